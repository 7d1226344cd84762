import logging
from typing import Tuple

import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS


def get_dataset_class_statistics(dataset) -> Tuple[np.ndarray, int]:
    """Per-class positive counts ``(K,)`` and number of images ``N`` of a
    training dataset.

    The first dataset in the chain that has ``get_class_counts()`` (all
    mlimb_mm datasets and label wrappers) is used with its own ``len``;
    MMEngine's ``RepeatDataset`` / ``ClassBalancedDataset`` (and other
    wrappers with a ``.dataset``) are looked through, so repetition or
    re-sampling does not change the statistics; the parts of a
    ``ConcatDataset`` (``.datasets``) are summed.
    """
    if hasattr(dataset, 'get_class_counts'):
        counts = np.asarray(dataset.get_class_counts(), dtype=np.int64)
        return counts, int(len(dataset))
    if hasattr(dataset, 'datasets'):
        parts = [get_dataset_class_statistics(d) for d in dataset.datasets]
        if not parts or len({len(c) for c, _ in parts}) != 1:
            raise ValueError('ClassStatisticsHook: the parts of '
                             f'{type(dataset).__name__} have different '
                             'numbers of classes (or there are none).')
        return (np.sum([c for c, _ in parts], axis=0),
                int(sum(n for _, n in parts)))
    if hasattr(dataset, 'dataset'):
        return get_dataset_class_statistics(dataset.dataset)
    raise TypeError(
        f'ClassStatisticsHook: the training dataset {type(dataset).__name__} '
        'has no get_class_counts() (implemented by mlimb_mm datasets, see '
        'mlimb_mm.datasets.BaseMultiLabelDataset) and wraps no dataset that '
        'has one; give the loss `class_counts` and `num_samples` instead.')


@HOOKS.register_module()
class ClassStatisticsHook(Hook):
    """Give the training-set class statistics to the modules that need them
    (e.g. :class:`~mlimb_mm.models.losses.DistributionBalancedLoss`).

    In ``before_train`` it reads ``get_class_counts()`` (positives per class
    ``n_k``) and ``len()`` (``N``) of ``runner.train_dataloader.dataset``
    (through dataset wrappers, see :func:`get_dataset_class_statistics`) and
    calls ``set_class_statistics(class_counts, num_samples)`` on every module
    of the model (unwrapped from DDP) that has that method.

    ``before_train`` runs after MMEngine has loaded or resumed a checkpoint
    (``Runner.train``: ``before_run`` -> load/resume -> ``before_train``),
    so by default the statistics of the current training set replace those
    a checkpoint carried (a warning says when they differ). With
    ``override=False`` modules that already hold statistics (from a
    checkpoint or their own config) keep them.

    Args:
        override (bool): Replace statistics a module already holds.
            Defaults to True.

    Examples:
        >>> custom_hooks = [dict(type='ClassStatisticsHook')]
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, override: bool = True):
        self.override = override

    @staticmethod
    def _targets(runner):
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        return [(name, module) for name, module in model.named_modules()
                if callable(getattr(module, 'set_class_statistics', None))]

    def before_train(self, runner) -> None:
        """Read the statistics of the training set and set them on the
        model's modules.

        Args:
            runner (Runner): The runner of the training process.
        """
        targets = self._targets(runner)
        if not targets:
            print_log(
                'ClassStatisticsHook: no module of the model has '
                '`set_class_statistics`; nothing to do.', 'current',
                logging.WARNING)
            return
        counts, num_samples = get_dataset_class_statistics(
            runner.train_dataloader.dataset)
        updated = []
        for name, module in targets:
            held = getattr(module, 'has_class_statistics', False)
            if held:
                old_counts = module.class_counts.cpu().numpy()
                same = (old_counts.shape == counts.shape
                        and np.array_equal(old_counts, counts)
                        and int(module.num_samples) == num_samples)
                if not self.override:
                    continue
                if not same:
                    print_log(
                        f'ClassStatisticsHook: {name or "model"} held class '
                        'statistics (from a checkpoint or its config) that '
                        'differ from the training set; using the training '
                        'set\'s.', 'current', logging.WARNING)
            module.set_class_statistics(counts, num_samples)
            updated.append(name or 'model')
        print_log(
            f'ClassStatisticsHook: set the class statistics of {len(counts)} '
            f'classes over {num_samples} training images (min/max positives '
            f'{int(counts.min()) if len(counts) else 0}/'
            f'{int(counts.max()) if len(counts) else 0}) on {updated}.',
            'current', logging.INFO)
