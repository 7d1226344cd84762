import logging
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

from ...datasets.label_utils import long_tail_groups
from ...models.utils.partial_labels import (initial_pseudo_labels,
                                            merge_predictions,
                                            pseudo_label_quality)
from ..training_set_pass import TrainingSetPass
from .hook_utils import (class_names_of, clean_labels_of, derive_seed,
                         find_recording_head, format_vector, jsonable,
                         pop_recorded_predictions, shared_seed,
                         write_json_history)
from .label_store_hook import (StoreField, get_label_store,
                               get_label_store_hook)
from .loss_epoch_hook import set_epoch_of_modules
from .stateful_hook import StatefulHook

DATA_BATCH = Optional[Union[dict, tuple, list]]

HISTORY_JSON = 'pseudo_labels.json'
SOURCES = ('train', 'pass')
_STATE_VERSION = 1
_PASS_SALT = 0x50534C42  # 'PSLB': the pass's random transforms


@HOOKS.register_module()
class PseudoLabelHook(StatefulHook):
    """Pseudo labels for the unknown labels (Zhang et al., "Towards
    Imbalanced Large Scale Multi-label Classification with Partially
    Annotated Labels", Eq. (5)): every unknown (image, class) label gets
    ``init_value`` (0.5) at the start and, each epoch, the model's
    prediction for it; observed labels are never overwritten.

    The labels live in the label store field ``field`` (float16, filled
    with the observed multi-hot, then ``init_value`` on the unknown
    labels), which ``LabelStoreHook`` puts into every batch as
    ``gt_score``: observed labels carry their value, unknown ones the pseudo
    label (``DynamicPartialLoss`` reads them). With ``source='train'``
    (default, no extra pass) the predictions are the sigmoid of the logits
    the head computed for its loss (``TriStateLinearClsHead``'s training
    predictions), written into the store after every step and synced
    across ranks at the epoch end; an image's new pseudo labels are used
    from its next visit (the next epoch with a sampler that visits each
    image once). ``source='pass'``: one ``TrainingSetPass`` (eval mode,
    ``pass_pipeline``) at every epoch end instead.

    Each epoch the mean pseudo label and, where the dataset kept its clean
    labels (``MissingLabelDataset``), their accuracy per class and per
    class group go to ``log_dir/pseudo_labels.json``; the log gets a
    summary. The store (pseudo labels) and this history are checkpointed.
    It also gives the loss the epoch (``set_epoch``, Eq. (9)) and the
    seed. Notes: ``configs/partial_labels/README.md``.

    Args:
        init_value (float): Eq. (5)'s initial pseudo label. Defaults to 0.5.
        source (str): ``'train'`` or ``'pass'``. Defaults to ``'train'``.
        field (str): Label-store field. Defaults to ``'targets'``.
        pass_pipeline (list, optional): Pipeline of the pass (the training
            pipeline when None); ``pass_batch_size``, ``pass_num_workers``,
            ``max_forward``, ``pass_freeze_model`` (its ``freeze_model``):
            ``TrainingSetPass`` settings.
        threshold (float): A pseudo label counts as positive from it (the
            accuracy of the history). Defaults to 0.5.
        group_thresholds (tuple): ``(low, high)`` training counts of the
            many / medium / few class groups. Defaults to (20, 100).
        set_loss_epoch (bool): Call ``set_epoch`` on the model's modules
            before every epoch. Defaults to True.
        seed (int, optional): Seed given to the loss and the pass; the
            runner's when None.
    """

    priority = 'NORMAL'
    ckpt_key = 'pseudo_labels'
    CONSUMER = 'PseudoLabelHook'

    def __init__(self,
                 init_value: float = 0.5,
                 source: str = 'train',
                 field: str = 'targets',
                 pass_pipeline: Optional[Sequence[dict]] = None,
                 pass_batch_size: Optional[int] = None,
                 pass_num_workers: Optional[int] = None,
                 max_forward: Optional[int] = None,
                 pass_freeze_model: bool = True,
                 threshold: float = 0.5,
                 group_thresholds: Tuple[int, int] = (20, 100),
                 set_loss_epoch: bool = True,
                 seed: Optional[int] = None):
        who = type(self).__name__
        if not 0. <= float(init_value) <= 1.:
            raise ValueError(f'{who}: init_value must be in [0, 1], got '
                             f'{init_value}.')
        if source not in SOURCES:
            raise ValueError(f'{who}: source must be one of {SOURCES}, got '
                             f'{source!r}.')
        self.init_value = float(init_value)
        self.source = source
        self.field = field
        self.threshold = float(threshold)
        self.group_thresholds = tuple(group_thresholds)
        self.set_loss_epoch = bool(set_loss_epoch)
        self.seed = seed
        self.training_set_pass = TrainingSetPass(
            pipeline=pass_pipeline, batch_size=pass_batch_size,
            num_workers=pass_num_workers, max_forward=max_forward,
            freeze_model=pass_freeze_model, who=who) \
            if source == 'pass' else None
        self.history: List[dict] = []
        self.initialized = False
        self._seed: Optional[int] = None
        self._head = None
        self._clean = None
        self._groups = None
        self._classes: Optional[List[str]] = None
        self._resumed_state: Optional[dict] = None

    def label_store_fields(self) -> List[StoreField]:
        """The targets (observed labels and pseudo labels), replacing
        ``gt_score`` in every batch."""
        return [StoreField(self.field, 'float16', 'observed', 'gt_score')]

    # ------------------------------------------------------------------
    def before_train(self, runner) -> None:
        """Seed, resumed state, the initial pseudo labels of a fresh run
        (Eq. 5), the clean labels and class groups of the history; start
        recording the head's training predictions."""
        from mmengine.runner import IterBasedTrainLoop
        who = type(self).__name__
        if isinstance(getattr(runner, 'train_loop', None),
                      IterBasedTrainLoop):
            raise TypeError(f'{who} updates the pseudo labels per epoch: it '
                            'needs an epoch-based training loop.')
        store_hook = get_label_store_hook(runner)
        store = store_hook.get_store(runner)
        self._seed = shared_seed(self.seed, runner)
        self.restore_resumed_state()
        if not self.initialized:  # a resumed store holds them already
            store.set_all(self.field, initial_pseudo_labels(
                store[self.field], store['observed'], self.init_value))
            self.initialized = True
        dataset = store_hook.labelled_dataset(runner)
        self._classes = class_names_of(dataset, store.num_classes)
        clean = clean_labels_of(dataset)
        self._clean = None if clean is None else torch.as_tensor(clean)
        labels = self._clean if self._clean is not None else \
            store['observed']
        counts = (labels == 1).sum(0).numpy()
        self._groups = {
            name: index.tolist()
            for name, index in long_tail_groups(
                counts, self.group_thresholds).items()
        }
        if self.source == 'train':
            self._head = find_recording_head(runner.model, who)
            self._head.enable_train_predictions(self.CONSUMER)
            if getattr(self._head, 'ignore_unknown', False):
                print_log(
                    f'{who}: the head has ignore_unknown=True, so unknown '
                    'labels weigh 0 and their pseudo labels never reach the '
                    'loss; set ignore_unknown=False (and pass_tristate=True '
                    'for DynamicPartialLoss).', 'current', logging.WARNING)
        unknown = int((store['observed'] == -1).sum())
        print_log(
            f'{who}: {unknown} unknown labels of {store.num_samples} images '
            f'carry pseudo labels (field {self.field!r}, source '
            f'{self.source!r}).', 'current', logging.INFO)

    def after_train(self, runner) -> None:
        if self._head is not None:
            self._head.disable_train_predictions(self.CONSUMER)

    def before_train_epoch(self, runner) -> None:
        """Give epoch-dependent losses (``d`` of Eq. 9) the epoch."""
        if self.set_loss_epoch:
            set_epoch_of_modules(runner.model, runner.epoch,
                                 runner.max_epochs, self._seed)

    # ------------------------------------------------------------------
    # Eq. (5) updates
    # ------------------------------------------------------------------
    def record(self, store, logits: torch.Tensor,
               sample_idx: torch.Tensor) -> None:
        """Write ``sigmoid(logits)`` ``(B, K)`` of the images ``sample_idx``
        onto their unknown labels (queued for the epoch-end sync)."""
        if logits.dim() != 2 or logits.size(0) != sample_idx.numel() or \
                logits.size(1) != store.num_classes:
            raise ValueError(
                f'{type(self).__name__}: {tuple(logits.shape)} logits for '
                f'{sample_idx.numel()} samples of {store.num_classes} '
                'classes.')
        probs = torch.sigmoid(logits.detach().float()).cpu()
        rows = merge_predictions(store.get(self.field, sample_idx),
                                 store.get('observed', sample_idx), probs)
        store.update(self.field, sample_idx, rows)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Record the step's predictions (``source='train'``)."""
        if self.source != 'train':
            return
        if self._head is None:
            self._head = find_recording_head(runner.model,
                                             type(self).__name__)
            self._head.enable_train_predictions(self.CONSUMER)
        records = pop_recorded_predictions(self._head, self.CONSUMER,
                                           data_batch, type(self).__name__)
        store = get_label_store(runner) if records else None
        for logits, idx in records:
            self.record(store, logits, idx)

    def after_train_epoch(self, runner) -> None:
        """With ``source='pass'``, the pass and the update; then the
        history (the store is synced: ``LabelStoreHook`` runs first)."""
        store = get_label_store(runner)
        epoch = int(runner.epoch) + 1  # epochs done
        if self.source == 'pass':
            result = self.training_set_pass.run(
                runner, derive_seed(self._seed, epoch, _PASS_SALT),
                store.num_samples, observed=store['observed'])
            store.set_all(self.field, merge_predictions(
                store[self.field], store['observed'], result['probs']))
        summary = self.summarize(store)
        summary['epoch'] = epoch
        self.history.append(summary)
        hub = getattr(runner, 'message_hub', None)
        if hub is not None:
            hub.update_info('pseudo_labels/mean', summary['mean'])
        print_log(f'{type(self).__name__}: epoch {epoch}: ' +
                  log_line(summary), 'current', logging.INFO)
        write_json_history(runner, HISTORY_JSON, self.history_dict())

    def summarize(self, store) -> dict:
        """:func:`pseudo_label_quality` of the store's pseudo labels."""
        return pseudo_label_quality(store[self.field], store['observed'],
                                    self._clean, self._groups,
                                    self.threshold)

    def history_dict(self) -> dict:
        return dict(init_value=self.init_value, source=self.source,
                    threshold=self.threshold, classes=self._classes,
                    group_thresholds=list(self.group_thresholds),
                    groups=self._groups, epochs=jsonable(self.history))

    # ------------------------------------------------------------------
    # checkpointing (StatefulHook); the pseudo labels themselves are in
    # the label store's checkpoint state
    # ------------------------------------------------------------------
    def is_set_up(self) -> bool:
        return self._seed is not None

    def state_dict(self) -> dict:
        return dict(version=_STATE_VERSION, initialized=self.initialized,
                    init_value=self.init_value,
                    history=jsonable(self.history))

    def apply_state(self, state: dict) -> None:
        self.initialized = bool(state.get('initialized', False))
        self.history = list(state.get('history') or [])


def log_line(summary: dict) -> str:
    """The summary of an epoch for the log."""
    parts = [f"{summary['num_unknown']} pseudo labels"]
    if summary.get('mean') is not None:
        parts.append(f"mean {summary['mean']:.4g} per class "
                     f"{format_vector(_nan(summary['mean_per_class']))}")
    if summary.get('accuracy') is not None:
        acc = f"accuracy {summary['accuracy']:.4f}"
        groups = summary.get('groups') or {}
        per_group = [f'{name} {g["accuracy"]:.4f}'
                     for name, g in groups.items()
                     if g.get('accuracy') is not None]
        if per_group:
            acc += ' (' + ', '.join(per_group) + ')'
        parts.append(acc)
    for key, name in (('mean_on_hidden_positives', 'hidden positives'),
                      ('mean_on_hidden_negatives', 'hidden negatives')):
        if summary.get(key) is not None:
            parts.append(f'mean on {name} {summary[key]:.4g}')
    return '; '.join(parts)


def _nan(values) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values],
                      dtype=np.float64)
