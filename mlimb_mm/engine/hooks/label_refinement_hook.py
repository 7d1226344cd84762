import csv
import logging
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine import dist
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

from ...evaluation.metrics.long_tail_map import long_tail_groups
from ...models.utils.label_refinement import (CATEGORY_NAMES,
                                              categorize_labels,
                                              fit_label_gmms, group_quality,
                                              quality_counts,
                                              rank_untrusted_labels,
                                              summarize_categories)
from ..training_set_pass import TrainingSetPass
from .hook_utils import (class_names_of, clean_labels_of, derive_seed,
                         jsonable, shared_seed, write_json_history)
from .label_store_hook import (LabelStoreHook, StoreField,
                               get_label_store_hook)
from .stateful_hook import StatefulHook

HISTORY_JSON = 'label_refinement.json'
EXPORT_CSV = 'noisy_labels.csv'
DEFAULT_GMM_BINS = 4096
_STATE_VERSION = 1
_PASS_SALT = 0x42414C4D  # 'BALM': the views of the pass


@HOOKS.register_module()
class LabelRefinementHook(StatefulHook):
    """Label-wise management of noisy labels with per-set GMMs (BalanceMix,
    Song et al. 2024, Eq. (6)-(10)), usable with any loss, head and sampler.

    From the end of epoch ``warmup_epochs`` on, after every epoch: one pass
    over the training set (:class:`~mlimb_mm.engine.TrainingSetPass`: the
    per-label BCE losses of the plain images against the observed labels
    and the mean prediction over ``num_views`` augmented views), the ``2K``
    GMMs of the losses (positives and negatives of every class apart), and
    every observed label marked clean (target = observed), re-labelled
    (mean view prediction ``>= tau`` -> 1, ``< 1 - tau`` -> 0) or ambiguous
    (observed target, weight = clean probability). The targets and weights
    go to the label store, which puts them into every batch as ``gt_score``
    / ``label_weight``.

    Each refinement writes ``log_dir/noisy_labels.csv``: the labels it does
    not trust (image, class, observed label, clean probability, category,
    target, weight), least trustworthy first; and, where the dataset keeps
    its clean labels (``get_clean_tristate_labels``), the precision and
    recall of the clean selection and of re-labelling over all classes and
    the many / medium / few groups. The history goes to
    ``log_dir/label_refinement.json`` and the checkpoint. Notes and
    results: ``configs/balancemix/README.md``.

    Args:
        warmup_epochs (int): Epochs trained on the observed labels.
            Defaults to 10.
        tau (float): Re-labelling threshold, Eq. (9). Defaults to 0.975
            (0.55 for single-positive labels).
        use_relabel (bool): Re-label (else those labels are ambiguous).
            Defaults to True.
        use_ambiguous (bool): Keep ambiguous labels at their clean
            probability (else weight 0). Defaults to True.
        pass_pipeline (list, optional): Pipeline of the pass (the training
            pipeline when None).
        view_transforms (list, optional): Transforms of each view, e.g.
            RandAugment (the paper); views in tensor space when None.
        num_views (int): Views of Eq. (9). Defaults to 2.
        pass_batch_size, pass_num_workers, max_forward (int, optional),
            pass_freeze_model (bool): :class:`~mlimb_mm.engine.TrainingSetPass`
            settings (``freeze_model`` for the last; defaults to True).
        view_max_shift, view_min_scale, view_flip: tensor-space views
            (:func:`~mlimb_mm.engine.tensor_view_augment`).
        gmm_cfg (dict, optional): ``fit_label_gmms`` arguments; the
            histogram fit with 4096 bins by default.
        group_thresholds (tuple): ``(low, high)`` training counts of the
            class groups of the quality report. Defaults to (20, 100).
        export (str, optional): ``'unclean'`` (default), ``'all'`` or None.
        seed (int, optional): Seed of the views; the runner's when None.
    """

    priority = 'NORMAL'
    ckpt_key = 'label_refinement'

    def __init__(self,
                 warmup_epochs: int = 10,
                 tau: float = 0.975,
                 use_relabel: bool = True,
                 use_ambiguous: bool = True,
                 pass_pipeline: Optional[Sequence[dict]] = None,
                 view_transforms: Optional[Sequence[dict]] = None,
                 num_views: int = 2,
                 pass_batch_size: Optional[int] = None,
                 pass_num_workers: Optional[int] = None,
                 max_forward: Optional[int] = None,
                 pass_freeze_model: bool = True,
                 view_max_shift: float = 0.125,
                 view_min_scale: float = 0.8,
                 view_flip: bool = True,
                 gmm_cfg: Optional[dict] = None,
                 group_thresholds: Tuple[int, int] = (20, 100),
                 export: Optional[str] = 'unclean',
                 seed: Optional[int] = None):
        who = type(self).__name__
        if int(warmup_epochs) < 0:
            raise ValueError(f'{who}: warmup_epochs must be >= 0, got '
                             f'{warmup_epochs}.')
        if not 0.5 <= float(tau) <= 1:
            raise ValueError(f'{who}: tau must be in [0.5, 1], got {tau}.')
        if export not in (None, 'unclean', 'all'):
            raise ValueError(f"{who}: export must be 'unclean', 'all' or "
                             f'None, got {export!r}.')
        self.warmup_epochs = int(warmup_epochs)
        self.tau = float(tau)
        self.use_relabel = bool(use_relabel)
        self.use_ambiguous = bool(use_ambiguous)
        self.training_set_pass = TrainingSetPass(
            pipeline=pass_pipeline,
            num_views=num_views if use_relabel else 0,
            view_transforms=view_transforms,
            batch_size=pass_batch_size,
            num_workers=pass_num_workers,
            max_forward=max_forward,
            freeze_model=pass_freeze_model,
            tensor_view_cfg=dict(max_shift=float(view_max_shift),
                                 min_scale=float(view_min_scale),
                                 flip=bool(view_flip)),
            who=who)
        self.gmm_cfg = dict(num_bins=DEFAULT_GMM_BINS, **(gmm_cfg or {}))
        self.group_thresholds = tuple(group_thresholds)
        self.export = export
        self.seed = seed
        self.history: List[dict] = []
        self.last_pass: Optional[Tuple[int, torch.Tensor]] = None
        self._seed: Optional[int] = None
        self._image_names: Optional[List[str]] = None
        self._resumed_state: Optional[dict] = None

    def label_store_fields(self) -> List[StoreField]:
        """The refined targets and weights, replacing ``gt_score`` and
        ``label_weight`` in every batch."""
        return [StoreField('targets', inject='gt_score'),
                StoreField('weights', inject='label_weight')]

    def before_train(self, runner) -> None:
        from mmengine.runner import IterBasedTrainLoop
        if isinstance(getattr(runner, 'train_loop', None),
                      IterBasedTrainLoop):
            raise TypeError(f'{type(self).__name__} refines the labels per '
                            'epoch: it needs an epoch-based training loop.')
        get_label_store_hook(runner).get_store(runner)
        self._seed = shared_seed(self.seed, runner)
        self.restore_resumed_state()

    def after_train_epoch(self, runner) -> None:
        """Refine the labels from the end of the warm-up on."""
        epoch = int(runner.epoch) + 1  # epochs done
        if epoch >= self.warmup_epochs:
            self.refine(runner, epoch)

    def refine(self, runner, epoch: int) -> dict:
        """Eq. (6)-(10) after epoch ``epoch`` (a collective): the pass, the
        GMMs, the categories; writes the store, the history and the export.
        Returns the epoch's summary."""
        store_hook = get_label_store_hook(runner)
        store = store_hook.get_store(runner)
        observed = store['observed']
        t0 = time.perf_counter()
        result = self.training_set_pass.run(
            runner, derive_seed(self._seed, epoch, _PASS_SALT),
            store.num_samples, targets=(observed == 1).float(),
            observed=observed)
        t1 = time.perf_counter()
        mean_pred = result['view_probs'] if result['view_probs'] is not None \
            else result['probs']
        managed = self.manage(result['losses'], mean_pred, observed)
        t2 = time.perf_counter()
        store.set_all('targets', managed['targets'])
        store.set_all('weights', managed['weights'])
        self.last_pass = (epoch, result['probs'])
        summary = self.summarize(runner, store_hook, managed, observed)
        summary.update(epoch=epoch, pass_seconds=round(t1 - t0, 3),
                       gmm_seconds=round(t2 - t1, 3))
        self.history.append(summary)
        hub = getattr(runner, 'message_hub', None)
        if hub is not None:
            hub.update_info('label_refinement/summary', summary)
        print_log(f'{type(self).__name__}: epoch {epoch}: ' +
                  log_line(summary), 'current', logging.INFO)
        write_json_history(runner, HISTORY_JSON, self.history_dict())
        if self.export is not None:
            self.export_labels(runner, store_hook, observed, managed)
        return summary

    def manage(self, losses: torch.Tensor, mean_pred: torch.Tensor,
               observed: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Eq. (6)-(10) on ``(N, K)`` losses, mean view predictions and
        tri-state labels: :func:`categorize_labels`' targets, weights and
        categories, and the GMMs' ``clean_prob``."""
        clean_prob, _ = fit_label_gmms(losses, observed, **self.gmm_cfg)
        managed = categorize_labels(clean_prob.float(), mean_pred, observed,
                                    self.tau, True, self.use_relabel,
                                    self.use_ambiguous)
        managed['clean_prob'] = clean_prob.float()
        return managed

    def summarize(self, runner, store_hook: LabelStoreHook, managed: dict,
                  observed: torch.Tensor) -> dict:
        """Category counts, per class too, and with the dataset's clean
        labels the precision / recall overall and per class group."""
        category, targets = managed['category'], managed['targets']
        clean = clean_labels_of(store_hook.labelled_dataset(runner))
        summary = summarize_categories(category, observed, targets,
                                       managed['weights'], clean)
        summary['per_class'] = {
            name: (category == value).sum(0).tolist()
            for value, name in CATEGORY_NAMES.items() if value >= 0
        }
        if clean is not None:
            counts = (torch.as_tensor(clean) == 1).sum(0).numpy()
            groups = long_tail_groups(counts, self.group_thresholds)
            summary['groups'] = group_quality(
                quality_counts(category, observed, targets, clean), groups)
        return summary

    def history_dict(self) -> dict:
        return dict(tau=self.tau, use_relabel=self.use_relabel,
                    use_ambiguous=self.use_ambiguous,
                    group_thresholds=list(self.group_thresholds),
                    refinements=jsonable(self.history))

    def export_labels(self, runner, store_hook: LabelStoreHook,
                      observed: torch.Tensor, managed: dict) -> Optional[str]:
        """Write the labels the refinement does not trust (all of them with
        ``export='all'``), least trustworthy first, to
        ``log_dir/noisy_labels.csv`` (rank 0)."""
        log_dir = getattr(runner, 'log_dir', None)
        if log_dir is None or not dist.is_main_process():
            return None
        dataset = store_hook.labelled_dataset(runner)
        clean_prob = managed['clean_prob']
        images, classes = rank_untrusted_labels(
            observed, clean_prob, managed['category'],
            include_clean=self.export == 'all')
        names = self.image_names(dataset)
        class_names = class_names_of(dataset, observed.size(1))
        columns = dict(
            image=[names[i] for i in images.tolist()],
            sample_idx=images.tolist(),
            class_name=[class_names[k] for k in classes.tolist()],
            observed=observed[images, classes].tolist(),
            clean_prob=[f'{v:.4f}' for v in
                        clean_prob[images, classes].tolist()],
            category=[CATEGORY_NAMES[c] for c in
                      managed['category'][images, classes].tolist()],
            target=managed['targets'][images, classes].tolist(),
            weight=[f'{v:.4f}' for v in
                    managed['weights'][images, classes].tolist()])
        os.makedirs(log_dir, exist_ok=True)
        path = osp.join(log_dir, EXPORT_CSV)
        with open(path + '.tmp', 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(list(columns))
            writer.writerows(zip(*columns.values()))
        os.replace(path + '.tmp', path)
        return path

    def image_names(self, dataset) -> List[str]:
        """Each training sample's ``img_path`` (its index when it has none),
        read once."""
        if self._image_names is None:
            names = []
            for i in range(len(dataset)):
                info = dataset.get_data_info(i)
                names.append(str(info.get('img_path', i)))
            self._image_names = names
        return self._image_names

    # ------------------------------------------------------------------
    # checkpointing (StatefulHook); the targets and weights are in the
    # label store's own checkpoint state
    # ------------------------------------------------------------------
    def is_set_up(self) -> bool:
        return self._seed is not None

    def state_dict(self) -> dict:
        return dict(version=_STATE_VERSION, history=list(self.history))

    def apply_state(self, state: dict) -> None:
        self.history = list(state.get('history') or [])


def log_line(summary: Dict) -> str:
    """The counts and the overall precision of a summary, for the log."""
    keys = ('clean_pos', 'clean_neg', 'relabelled_to_1', 'relabelled_to_0',
            'ambiguous', 'observed', 'observed_precision', 'clean_precision',
            'clean_recall', 'relabel_precision', 'pass_seconds',
            'gmm_seconds')
    parts = []
    for key in keys:
        value = summary.get(key)
        if value is None:
            continue
        parts.append(f'{key}={value:.4g}' if isinstance(value, float) else
                     f'{key}={value}')
    return ', '.join(parts)
