"""BalanceMix (Song et al. 2024): minority sampling updates and the
label-wise management, Algorithm 1 (``shared/seeds/balancemix_song2024.txt``;
``METHODS.md`` §3 fixes what the paper leaves open).

The parts:

- :class:`~mlimb_mm.datasets.samplers.BalanceMixSampler` puts ``B`` random
  and ``B`` minority indices in every DataLoader batch of ``2B``;
- :class:`~mlimb_mm.models.utils.balance_mix_preprocessor.
  BalanceMixDataPreprocessor` mixes the halves, Eq. (5), keeping the random
  image's per-label weights;
- :class:`BalanceMixHook` (here) refreshes the minority sampler once per
  epoch, Eq. (2)-(4), and after the warm-up runs the label-wise management,
  Eq. (6)-(10), writing the refined targets and weights into the label
  store, from which ``LabelStoreHook`` injects them into every batch as
  ``gt_score`` / ``label_weight``.
"""
import json
import logging
import math
import os
import os.path as osp
import random
import time
from functools import partial
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...datasets.samplers.balance_mix_sampler import BalanceMixSampler
from ...datasets.samplers.minority_sampler import (class_confidences,
                                                   confidence_sums)
from ...models.utils.balance_mix_preprocessor import \
    BalanceMixDataPreprocessor  # noqa: F401  (registers it in MODELS)
from ...models.utils.gmm import fit_label_gmms
from .head_utils import find_recording_head
from .label_store_hook import LabelStoreHook, _find_hook
from .seed_utils import shared_seed

DATA_BATCH = Optional[Union[dict, tuple, list]]

CKPT_KEY = 'balance_mix'
HISTORY_JSON = 'balancemix.json'
_STATE_VERSION = 1
_VIEW_SALT = 0x42414C4D  # 'BALM'
_MIX_SALT = 0x4D495845  # 'MIXE'
DEFAULT_GMM_BINS = 4096

#: label categories of :func:`categorize_labels`
UNKNOWN, CLEAN, RELABELLED, AMBIGUOUS = -1, 0, 1, 2


# ----------------------------------------------------------------------
# the pieces of the method, as functions (tested one by one)
# ----------------------------------------------------------------------
def categorize_labels(clean_prob: torch.Tensor,
                      mean_pred: torch.Tensor,
                      observed: torch.Tensor,
                      tau: float = 0.975,
                      use_clean: bool = True,
                      use_relabel: bool = True,
                      use_ambiguous: bool = True) -> Dict[str, torch.Tensor]:
    """The label-wise management of the whole set, Eq. (8)-(10).

    For every observed label (tri-state ``observed`` 0 / 1; unknown labels,
    -1, are not managed: target 0, weight 1, the head masks them):

    - **clean**, Eq. (8): ``clean_prob > 0.5`` -> target = observed label,
      weight 1;
    - else **re-labelled**, Eq. (9): the mean two-view prediction
      ``mean_pred >= tau`` -> target 1, ``< 1 - tau`` -> target 0; weight 1;
    - else **ambiguous**, Eq. (10): target = observed label, weight =
      ``clean_prob``.

    Table 5's rows add the components one by one, and so do the switches:
    ``use_clean=False`` turns the label-wise management off (observed
    targets, every weight 1: the "+ Minority sampler" row); with
    ``use_relabel=False`` no label is re-labelled (those labels fall to the
    ambiguous category); with ``use_ambiguous=False`` the ambiguous labels
    get weight 0 (discarded: the "+ Clean labels" row discards every
    unclean label, "+ Re-labeled labels" keeps the re-labelled ones too).

    Returns:
        dict: ``targets`` and ``weights`` (float32 ``(N, K)``),
        ``category`` (int8 ``(N, K)``: -1 unknown, 0 clean, 1 re-labelled,
        2 ambiguous; all observed labels are 0 when ``use_clean=False``).
    """
    observed = torch.as_tensor(observed)
    clean_prob = torch.as_tensor(clean_prob).float()
    mean_pred = torch.as_tensor(mean_pred).float()
    if not (observed.shape == clean_prob.shape == mean_pred.shape):
        raise ValueError('categorize_labels: shapes differ: observed '
                         f'{tuple(observed.shape)}, clean_prob '
                         f'{tuple(clean_prob.shape)}, mean_pred '
                         f'{tuple(mean_pred.shape)}.')
    if not 0.5 <= tau <= 1:
        raise ValueError(f'categorize_labels: tau must be in [0.5, 1], got '
                         f'{tau}.')
    known = observed >= 0
    obs_target = (observed == 1).float()
    category = torch.full(observed.shape, UNKNOWN, dtype=torch.int8)
    if not use_clean:
        category[known] = CLEAN
        return dict(targets=obs_target, weights=torch.ones_like(obs_target),
                    category=category)
    clean = known & (clean_prob > 0.5)
    rest = known & ~clean
    if use_relabel:
        to_one = rest & (mean_pred >= tau)
        to_zero = rest & (mean_pred < 1 - tau)
    else:
        to_one = to_zero = torch.zeros_like(rest)
    relabelled = to_one | to_zero
    ambiguous = rest & ~relabelled
    targets = obs_target.clone()
    targets[to_one] = 1.
    targets[to_zero] = 0.
    weights = torch.ones_like(obs_target)
    amb_weight = clean_prob.clamp(0, 1) if use_ambiguous else \
        torch.zeros_like(clean_prob)
    weights = torch.where(ambiguous, amb_weight, weights)
    category[clean] = CLEAN
    category[relabelled] = RELABELLED
    category[ambiguous] = AMBIGUOUS
    return dict(targets=targets, weights=weights, category=category)


def summarize_categories(category: torch.Tensor,
                         observed: torch.Tensor,
                         targets: torch.Tensor,
                         weights: torch.Tensor,
                         clean_labels: Optional[np.ndarray] = None) -> dict:
    """Counts per category and, with the dataset's clean tri-state labels,
    the precision of the labels marked clean (share whose observed value is
    the clean one), of the re-labelled targets, and the noise rate of all
    observed labels (the baseline precision). Plain Python numbers."""
    observed = torch.as_tensor(observed)
    pos = observed == 1
    out = dict(
        clean_pos=int((category == CLEAN)[pos].sum()),
        clean_neg=int(((category == CLEAN) & (observed == 0)).sum()),
        relabelled_to_1=int(((category == RELABELLED) & (targets > 0.5)).sum()),
        relabelled_to_0=int(((category == RELABELLED) & (targets <= 0.5)).sum()),
        relabelled_flipped=int(((category == RELABELLED)
                                & ((targets > 0.5) != pos)).sum()),
        ambiguous=int((category == AMBIGUOUS).sum()),
        observed=int((observed >= 0).sum()))
    amb = category == AMBIGUOUS
    out['ambiguous_mean_weight'] = float(weights[amb].mean()) \
        if bool(amb.any()) else None
    if clean_labels is not None:
        truth = torch.as_tensor(np.asarray(clean_labels)).to(torch.int8)
        if truth.shape != observed.shape:
            raise ValueError(f'clean labels {tuple(truth.shape)} for '
                             f'observed {tuple(observed.shape)}.')
        comparable = (truth >= 0) & (observed >= 0)
        correct = comparable & (truth == observed)
        marked = comparable & (category == CLEAN)
        out['observed_precision'] = _ratio(correct.sum(), comparable.sum())
        out['clean_precision'] = _ratio((correct & marked).sum(),
                                        marked.sum())
        out['clean_recall'] = _ratio((correct & marked).sum(),
                                     correct.sum())
        rel = comparable & (category == RELABELLED)
        out['relabel_precision'] = _ratio(
            (rel & ((targets > 0.5) == (truth == 1))).sum(), rel.sum())
    return out


def _ratio(num, den) -> Optional[float]:
    den = int(den)
    return None if den == 0 else float(int(num) / den)


def tensor_view_augment(inputs: torch.Tensor,
                        generator: Optional[torch.Generator] = None,
                        max_shift: float = 0.125,
                        min_scale: float = 0.8,
                        flip: bool = True) -> torch.Tensor:
    """A random view of a preprocessed ``(B, C, H, W)`` batch, in tensor
    space: per image a random zoom-in (scale in ``[min_scale, 1]`` of the
    field of view), a translation of up to ``max_shift`` of the image size
    and, with ``flip``, a horizontal flip with probability 0.5 (bilinear
    resampling; outside pixels are 0, the mean after normalisation).

    This stands in for the paper's RandAugment views of Eq. (9) (a
    documented deviation: the pass reuses the loaded, non-augmented batch
    instead of running the image pipeline twice more)."""
    num = inputs.size(0)
    r = torch.rand((num, 4), generator=generator, dtype=torch.float32)
    scale = min_scale + (1 - min_scale) * r[:, 0]
    shift = (2 * r[:, 1:3] - 1) * 2 * max_shift
    sign = torch.where(r[:, 3] < 0.5, -1.0, 1.0) if flip else \
        torch.ones(num)
    theta = torch.zeros((num, 2, 3), dtype=torch.float32)
    theta[:, 0, 0] = scale * sign
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    theta = theta.to(device=inputs.device, dtype=inputs.dtype)
    grid = F.affine_grid(theta, list(inputs.shape), align_corners=False)
    return F.grid_sample(inputs, grid, mode='bilinear',
                         padding_mode='zeros', align_corners=False)


# ----------------------------------------------------------------------
# the hook
# ----------------------------------------------------------------------
@HOOKS.register_module()
class BalanceMixHook(Hook):
    """Minority-sampler updates and label-wise management of BalanceMix.

    Needs ``train_dataloader.sampler = BalanceMixSampler(batch_size_per_half
    = B)`` with ``train_dataloader.batch_size = 2B``, the model's
    ``data_preprocessor = BalanceMixDataPreprocessor`` and a
    ``LabelStoreHook(fields=['targets', 'weights'], inject=dict(
    targets='gt_score', weights='label_weight'))``; checked in
    ``before_train`` with errors naming the missing piece.

    **Every epoch** (Algorithm 1, line 17) the minority sampler's
    probabilities are refreshed, Eq. (2)-(4): during the warm-up from the
    training predictions the head records (``enable_train_predictions``):
    the logits of the *mixed* images against the random image's observed
    labels (the random image dominates, ``lam >= 0.5``; an approximation,
    no extra pass); from the end of the warm-up on, from the refinement
    pass's predictions on the non-augmented images of the whole set. The
    confidence sums are all-reduced, ``P``/``A`` broadcast from rank 0: all
    ranks hold the same probabilities.

    **From the end of epoch ``warmup_epochs`` on**, every epoch end
    (Algorithm 1, line 18; used by the next epoch, line 13): one pass over
    the whole training set (a separate dataloader built from the training
    dataloader config: ``DefaultSampler(shuffle=False)`` shards,
    ``pass_pipeline`` in place of the innermost dataset's pipeline, model in
    eval mode, ``torch.no_grad()``) yielding per label the BCE loss of the
    non-augmented image against the observed label, its probability, and
    the mean probability over two views, Eq. (9). The two views are made by
    ``view_transforms`` (the paper: RandAugment) in the same pass, from the
    image loaded once (``MultiView``); without ``view_transforms`` they are
    :func:`tensor_view_augment` of the loaded batch. Cost: three forward
    passes (plain + two views, no backward) per training image per epoch
    after the warm-up, plus the view transforms in the workers. Results are
    summed over ranks (every rank holds the whole set), the ``2K`` GMMs are fitted
    (:func:`~mlimb_mm.models.utils.fit_label_gmms`, ``gmm_cfg``), the
    labels categorised (:func:`categorize_labels`) and the store fields
    ``targets`` / ``weights`` replaced on every rank (``set_all``).

    Logged each refinement: counts per category, the precision of the
    labels marked clean against ``get_clean_tristate_labels()`` when the
    dataset has it, the pass's and the GMM fit's seconds. The history goes
    to ``<log_dir>/balancemix.json`` (``refinements``, and
    ``minority_sampling``: the per-class sampling mass of every epoch, the
    paper's Figure 6, ``tools/analysis_tools/plot_minority_sampling.py``)
    and ``message_hub`` info ``balancemix/summary``.

    Checkpoint: ``checkpoint['balance_mix']`` holds the sampler state (the
    minority sampler's ``P``/``A`` and history) and the refinement
    summaries; the store (``LabelStoreHook``) holds targets and weights.
    Restored when resuming.

    Args:
        warmup_epochs (int): Epochs with observed labels. Defaults to 10.
        tau (float): Re-labelling threshold, Eq. (9). 0.975 (the paper's
            default); 0.55 for single-positive labels.
        use_clean, use_relabel, use_ambiguous (bool): Table 5's switches,
            see :func:`categorize_labels`. Default True.
        pass_pipeline (list, optional): Pipeline of the refinement pass
            (e.g. the test pipeline); the training pipeline when None.
        view_transforms (list, optional): The transforms of each of the two
            views of Eq. (9), e.g. ``[dict(type='RandAugment', ...)]`` (the
            paper). The pass pipeline becomes ``pass_pipeline`` with
            ``MultiView(num_views=[1, 2], transforms=[[], view_transforms])``
            before its packing transform: each image is loaded and decoded
            once and yields the plain image and two views. When None, the
            views are :func:`tensor_view_augment` of the plain batch (no
            extra image pipeline work; a documented deviation).
        pass_batch_size (int, optional): Defaults to the training
            dataloader's batch size.
        pass_num_workers (int, optional): Defaults to the training
            dataloader's.
        view_max_shift, view_min_scale, view_flip: :func:`tensor_view_augment`
            arguments, used without ``view_transforms`` (``view_flip=False``
            for digits).
        gmm_cfg (dict, optional): ``fit_label_gmms`` / ``fit_gmm_1d``
            keyword arguments (``max_iter``, ``tol``, ``reg_covar`` ...;
            the DivideMix defaults of ``METHODS.md``). ``num_bins``
            defaults to 4096 (the histogram fit, 17-21x faster than a loop of
            scikit-learn fits at COCO scale, ``tools/benchmark_gmm.py``);
            ``num_bins=None`` fits the entries exactly.
        seed (int, optional): Seed of the views and of the mixing draws
            (mixed with the epoch and rank); the runner's seed when None.
    """

    priority = 'NORMAL'
    CONSUMER = 'BalanceMixHook'

    def __init__(self,
                 warmup_epochs: int = 10,
                 tau: float = 0.975,
                 use_clean: bool = True,
                 use_relabel: bool = True,
                 use_ambiguous: bool = True,
                 pass_pipeline: Optional[Sequence[dict]] = None,
                 view_transforms: Optional[Sequence[dict]] = None,
                 pass_batch_size: Optional[int] = None,
                 pass_num_workers: Optional[int] = None,
                 view_max_shift: float = 0.125,
                 view_min_scale: float = 0.8,
                 view_flip: bool = True,
                 gmm_cfg: Optional[dict] = None,
                 seed: Optional[int] = None):
        if int(warmup_epochs) < 0:
            raise ValueError('BalanceMixHook: warmup_epochs must be >= 0, '
                             f'got {warmup_epochs}.')
        if not 0.5 <= float(tau) <= 1:
            raise ValueError(f'BalanceMixHook: tau must be in [0.5, 1], got '
                             f'{tau}.')
        if not use_clean and (use_relabel or use_ambiguous):
            raise ValueError(
                'BalanceMixHook: use_clean=False turns the label-wise '
                'management off; set use_relabel=False and '
                'use_ambiguous=False too (Table 5 adds the components one '
                'by one).')
        self.warmup_epochs = int(warmup_epochs)
        self.tau = float(tau)
        self.use_clean = bool(use_clean)
        self.use_relabel = bool(use_relabel)
        self.use_ambiguous = bool(use_ambiguous)
        self.pass_pipeline = None if pass_pipeline is None else list(
            pass_pipeline)
        self.view_transforms = None if view_transforms is None else list(
            view_transforms)
        if self.view_transforms is not None and self.pass_pipeline is None:
            raise ValueError(
                'BalanceMixHook: view_transforms need pass_pipeline (the '
                'non-augmented pipeline the views are made from).')
        self.pass_batch_size = pass_batch_size
        self.pass_num_workers = pass_num_workers
        self.view_max_shift = float(view_max_shift)
        self.view_min_scale = float(view_min_scale)
        self.view_flip = bool(view_flip)
        self.gmm_cfg = dict(num_bins=DEFAULT_GMM_BINS)
        self.gmm_cfg.update(gmm_cfg or {})
        self.seed = seed
        self.sampler: Optional[BalanceMixSampler] = None
        self.history: List[dict] = []
        self.last_summary: Optional[dict] = None
        self._head = None
        self._sums: Optional[torch.Tensor] = None
        self._pass_loader = None
        self._seed: Optional[int] = None
        self._resumed_state: Optional[dict] = None

    @property
    def manages_labels(self) -> bool:
        return self.use_clean

    # ------------------------------------------------------------------
    # set-up and checks
    # ------------------------------------------------------------------
    @staticmethod
    def _find_sampler(runner) -> BalanceMixSampler:
        loader = runner.train_dataloader
        sampler = getattr(loader, 'sampler', None)
        if not isinstance(sampler, BalanceMixSampler):
            raise TypeError(
                'BalanceMixHook needs train_dataloader.sampler = '
                "dict(type='BalanceMixSampler', batch_size_per_half=B) and "
                'train_dataloader.batch_size = 2B; the sampler is '
                f'{type(sampler).__name__}.')
        batch_size = getattr(loader, 'batch_size', None)
        if batch_size != sampler.expected_batch_size:
            raise ValueError(
                'BalanceMixHook: train_dataloader.batch_size must be 2 x '
                'BalanceMixSampler.batch_size_per_half (B random + B '
                f'minority samples per batch); got batch_size={batch_size} '
                f'and batch_size_per_half={sampler.batch_size_per_half}.')
        return sampler

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def _check_preprocessor(self, runner) -> None:
        pre = getattr(self._model(runner), 'data_preprocessor', None)
        if not isinstance(pre, BalanceMixDataPreprocessor):
            raise TypeError(
                'BalanceMixHook needs model.data_preprocessor = '
                "dict(type='BalanceMixDataPreprocessor', ...) to mix the "
                'random and minority halves of each batch, Eq. (5); the '
                f'model has {type(pre).__name__}.')

    def _check_store(self, runner):
        try:
            store_hook = _find_hook(runner)
        except RuntimeError as err:
            raise RuntimeError(
                'BalanceMixHook needs a LabelStoreHook in custom_hooks: '
                "dict(type='LabelStoreHook', fields=['targets', 'weights'], "
                "inject=dict(targets='gt_score', weights='label_weight'))."
            ) from err
        if self.manages_labels:
            inject = store_hook.inject
            if inject.get('targets') != 'gt_score' or \
                    inject.get('weights') != 'label_weight':
                raise ValueError(
                    'BalanceMixHook: the LabelStoreHook must inject the '
                    "refined labels: inject=dict(targets='gt_score', "
                    f"weights='label_weight'); got inject={inject}.")
        store = store_hook.get_store(runner)
        if self.manages_labels:
            store.add_field('targets')
            store.add_field('weights')
        return store_hook, store

    @staticmethod
    def _find_head(runner):
        return find_recording_head(runner.model, 'BalanceMixHook')

    def before_train(self, runner) -> None:
        """Check the pieces, restore a resumed state, start recording."""
        from mmengine.runner import IterBasedTrainLoop
        if isinstance(getattr(runner, 'train_loop', None),
                      IterBasedTrainLoop):
            raise TypeError('BalanceMixHook updates per epoch: it needs an '
                            'epoch-based training loop.')
        self.sampler = self._find_sampler(runner)
        if self.manages_labels:
            self._check_store(runner)
        self._check_preprocessor(runner)
        self._seed = shared_seed(self.seed, runner)
        if self._resumed_state is not None:
            self._apply_state(self._resumed_state)
            self._resumed_state = None
        if self.sampler.minority is not None:
            self._head = self._find_head(runner)
            self._head.enable_train_predictions(self.CONSUMER)
        print_log(
            f'BalanceMixHook: B={self.sampler.batch_size_per_half} per half, '
            f'{self.sampler.steps} steps per epoch, minority sampling '
            f'{"on" if self.sampler.minority is not None else "off"}, '
            f'warm-up {self.warmup_epochs} epochs, label management '
            f'clean={self.use_clean} relabel={self.use_relabel} '
            f'ambiguous={self.use_ambiguous}, tau={self.tau}.', 'current',
            logging.INFO)

    def after_train(self, runner) -> None:
        if self._head is not None:
            self._head.disable_train_predictions(self.CONSUMER)

    # ------------------------------------------------------------------
    # minority sampler updates, Eq. (2)-(4)
    # ------------------------------------------------------------------
    def before_train_epoch(self, runner) -> None:
        self._sums = None
        if self._head is not None:
            self._head.pop_train_predictions(self.CONSUMER)  # drop stale
        # the epoch's mixing draws (lam) come from (seed, epoch, rank): a
        # resumed run draws what the interrupted one would have drawn
        pre = self._model(runner).data_preprocessor
        pre.mixer.reseed(
            _derived_seed(self._seed, _MIX_SALT, int(runner.epoch),
                          dist.get_rank()))

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Accumulate the confidence sums of the step's (mixed-image)
        predictions against the random images' observed labels."""
        if self._head is None or self.sampler is None or \
                self.sampler.minority is None:
            return
        labels_all = self.sampler.minority.labels
        for record in self._head.pop_train_predictions(self.CONSUMER):
            idx = record.get('sample_idx')
            if idx is None:
                raise KeyError(
                    'BalanceMixHook: the head recorded predictions without '
                    "sample_idx; keep 'sample_idx' in the meta_keys of "
                    'PackMultiLabelInputs.')
            probs = record['logits'].detach().float().sigmoid().cpu()
            sums = confidence_sums(probs, labels_all[idx])
            self._sums = sums if self._sums is None else self._sums + sums

    def update_sampler_from_sums(self, sums: Optional[torch.Tensor],
                                 epoch: int) -> None:
        """All-reduce this rank's confidence sums, then Eq. (2)-(4)
        (collective)."""
        minority = self.sampler.minority
        if sums is None:
            sums = torch.zeros((4, minority.labels.size(1)),
                               dtype=torch.float64)
        if dist.get_world_size() > 1:
            dist.all_reduce(sums, op='sum')
        presence, absence = class_confidences(sums)
        minority.update_class_confidences(presence, absence, epoch)

    def after_train_epoch(self, runner) -> None:
        """Refine the labels (from the end of the warm-up on), then update
        the minority sampler (Algorithm 1, lines 17-18)."""
        epoch = int(runner.epoch) + 1  # epochs done
        pass_probs = None
        if self.manages_labels and epoch >= self.warmup_epochs:
            pass_probs = self.refine(runner, epoch)
        sampling = self.sampler is not None and \
            self.sampler.minority is not None
        if sampling:
            self.update_minority_sampler(runner, epoch, pass_probs)
        if sampling or pass_probs is not None:
            self.dump_history(runner)  # once per epoch, after both

    def update_minority_sampler(self, runner, epoch: int,
                                pass_probs: Optional[torch.Tensor]) -> None:
        """Eq. (2)-(4) from the refinement pass's probabilities when there
        was a pass this epoch, else from the epoch's training predictions."""
        minority = self.sampler.minority
        if pass_probs is not None:
            # identical on every rank already: no all-reduce
            sums = confidence_sums(pass_probs, minority.labels)
            presence, absence = class_confidences(sums)
            minority.update_class_confidences(presence, absence, epoch)
            source = 'refinement pass'
        else:
            self.update_sampler_from_sums(self._sums, epoch)
            source = 'training predictions'
        self._sums = None
        mass = minority.class_mass()
        uniform = minority.uniform_class_mass()
        hub = getattr(runner, 'message_hub', None)
        if hub is not None:
            hub.update_info('balancemix/class_mass', mass.tolist())
        print_log(
            f'BalanceMixHook: epoch {epoch}: minority sampler updated from '
            f'the {source}; P(k) {_fmt(minority.presence)}; A(k) '
            f'{_fmt(minority.absence)}; class mass {_fmt(mass)} (uniform '
            f'{_fmt(uniform)}).', 'current', logging.INFO)

    # ------------------------------------------------------------------
    # the refinement pass and the label-wise management, Eq. (6)-(10)
    # ------------------------------------------------------------------
    def build_pass_dataloader(self, runner):
        """The refinement pass's dataloader (built once): the training
        dataloader config with a non-shuffled ``DefaultSampler`` and the
        ``pass_pipeline``."""
        if self._pass_loader is not None:
            return self._pass_loader
        import copy
        from mmengine.runner import Runner
        cfg = getattr(runner, 'cfg', None)
        if cfg is None or 'train_dataloader' not in cfg:
            raise RuntimeError('BalanceMixHook: the runner has no '
                               'train_dataloader config to build the '
                               'refinement pass from.')
        loader_cfg = copy.deepcopy(cfg['train_dataloader'])
        loader_cfg = dict(loader_cfg)
        loader_cfg['sampler'] = dict(type='DefaultSampler', shuffle=False,
                                     round_up=False)
        loader_cfg.pop('batch_sampler', None)
        if self.pass_batch_size is not None:
            loader_cfg['batch_size'] = int(self.pass_batch_size)
        if self.pass_num_workers is not None:
            loader_cfg['num_workers'] = int(self.pass_num_workers)
        # fresh workers every pass, seeded from (seed, epoch, rank) by
        # _seeded(): the views of a resumed run are the interrupted run's
        loader_cfg['persistent_workers'] = False
        loader_cfg['drop_last'] = False
        pipeline = copy.deepcopy(self.pass_pipeline)
        if self.view_transforms is not None:  # needs pass_pipeline (init)
            pipeline = _with_views(pipeline,
                                   copy.deepcopy(self.view_transforms))
        if pipeline is not None:
            dataset_cfg = copy.deepcopy(loader_cfg['dataset'])
            _set_pipeline(dataset_cfg, pipeline)
            loader_cfg['dataset'] = dataset_cfg
        self._pass_loader = Runner.build_dataloader(loader_cfg)
        return self._pass_loader

    @torch.no_grad()
    def run_pass(self, runner, loader, observed: torch.Tensor,
                 epoch: int) -> Dict[str, torch.Tensor]:
        """Per-label BCE losses (non-augmented image vs. observed labels),
        probabilities and the mean two-view probability of every training
        sample, gathered over the ranks (every rank holds all)."""
        model = self._model(runner)
        num, num_classes = observed.shape
        loss_sum = torch.zeros((num, num_classes), dtype=torch.float32)
        prob_sum = torch.zeros_like(loss_sum)
        view_sum = torch.zeros_like(loss_sum)
        count = torch.zeros(num, dtype=torch.float32)
        pass_seed = _derived_seed(self._seed, _VIEW_SALT, epoch,
                                  dist.get_rank())
        gen = torch.Generator().manual_seed(pass_seed)
        was_training = model.training
        model.eval()
        try:
            for data in _seeded(loader, pass_seed):
                data, view_batches = _split_views(data, model)
                inputs, samples = data['inputs'], data['data_samples']
                idx = torch.as_tensor(
                    [int(s.metainfo['sample_idx']) for s in samples],
                    dtype=torch.int64)
                if 'gt_tristate' in samples[0]:
                    tri = torch.stack([
                        torch.as_tensor(s.gt_tristate) for s in samples
                    ]).to(torch.int8)
                    if not torch.equal(tri, observed[idx]):
                        raise RuntimeError(
                            'BalanceMixHook: the refinement pass dataset '
                            'disagrees with the label store on the labels '
                            'of the same sample_idx; it must rebuild the '
                            'training set (same noise seed).')
                logits = model(inputs, mode='tensor').float()
                target = (observed[idx] == 1).float().to(logits.device)
                loss = F.binary_cross_entropy_with_logits(
                    logits, target, reduction='none')
                views = torch.zeros_like(logits)
                for view in view_batches or [None, None]:
                    x = view if view is not None else tensor_view_augment(
                        inputs, gen, self.view_max_shift,
                        self.view_min_scale, self.view_flip)
                    views += model(x, mode='tensor').float().sigmoid()
                loss_sum.index_add_(0, idx, loss.cpu())
                prob_sum.index_add_(0, idx, logits.sigmoid().cpu())
                view_sum.index_add_(0, idx, (views / 2).cpu())
                count.index_add_(0, idx, torch.ones(len(idx)))
        finally:
            model.train(was_training)
        if dist.get_world_size() > 1:
            for t in (loss_sum, prob_sum, view_sum, count):
                dist.all_reduce(t, op='sum')
        if bool((count == 0).any()):
            raise RuntimeError(
                f'BalanceMixHook: the refinement pass missed '
                f'{int((count == 0).sum())} of {num} training samples.')
        c = count.unsqueeze(1)
        return dict(losses=loss_sum / c, probs=prob_sum / c,
                    mean_pred=view_sum / c)

    def manage(self, losses: torch.Tensor, mean_pred: torch.Tensor,
               observed: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Eq. (6)-(10): the 2K GMMs, then :func:`categorize_labels`."""
        clean_prob, _ = fit_label_gmms(losses, observed,
                                       **self.gmm_cfg)
        out = categorize_labels(clean_prob.float(), mean_pred, observed,
                                self.tau, self.use_clean, self.use_relabel,
                                self.use_ambiguous)
        out['clean_prob'] = clean_prob.float()
        return out

    def refine(self, runner, epoch: int) -> torch.Tensor:
        """The label-wise management after epoch ``epoch``; returns the
        pass's ``(N, K)`` probabilities (for the minority sampler)."""
        store_hook, store = self._check_store(runner)
        observed = store['observed']
        loader = self.build_pass_dataloader(runner)
        t0 = time.perf_counter()
        result = self.run_pass(runner, loader, observed, epoch)
        t1 = time.perf_counter()
        managed = self.manage(result['losses'], result['mean_pred'],
                              observed)
        t2 = time.perf_counter()
        store.set_all('targets', managed['targets'])
        store.set_all('weights', managed['weights'])
        clean_labels = _clean_labels(store_hook, runner)
        summary = summarize_categories(managed['category'], observed,
                                       managed['targets'],
                                       managed['weights'], clean_labels)
        summary.update(epoch=epoch, pass_seconds=round(t1 - t0, 3),
                       gmm_seconds=round(t2 - t1, 3))
        self.last_summary = summary
        self.history.append(summary)
        hub = getattr(runner, 'message_hub', None)
        if hub is not None:
            hub.update_info('balancemix/summary', summary)
        print_log(
            f'BalanceMixHook: epoch {epoch}: label-wise management: ' +
            ', '.join(f'{k}={_fmt_value(v)}' for k, v in summary.items()),
            'current', logging.INFO)
        return result['probs']

    def dump_history(self, runner) -> Optional[str]:
        log_dir = getattr(runner, 'log_dir', None)
        if log_dir is None or not dist.is_main_process():
            return None
        os.makedirs(log_dir, exist_ok=True)
        path = osp.join(log_dir, HISTORY_JSON)
        record = dict(refinements=self.history)
        minority = None if self.sampler is None else self.sampler.minority
        if minority is not None:
            history = minority.history
            dataset = getattr(getattr(runner, 'train_dataloader', None),
                              'dataset', None)
            classes = (getattr(dataset, 'metainfo', None) or {}).get(
                'classes') or [str(k) for k in range(len(
                    minority.uniform_class_mass()))]
            record['minority_sampling'] = dict(
                classes=list(classes),
                uniform_class_mass=minority.uniform_class_mass().tolist(),
                epochs=history['epochs'],
                class_mass=history['class_mass'].tolist())
        with open(path + '.tmp', 'w') as f:
            json.dump(record, f)
        os.replace(path + '.tmp', path)
        return path

    # ------------------------------------------------------------------
    # checkpointing
    # ------------------------------------------------------------------
    def state_dict(self) -> dict:
        return dict(
            version=_STATE_VERSION,
            sampler=None if self.sampler is None else
            self.sampler.state_dict(),
            last_summary=self.last_summary,
            history=list(self.history))

    def _apply_state(self, state: dict) -> None:
        if state.get('sampler') is not None and self.sampler is not None:
            self.sampler.load_state_dict(state['sampler'])
        self.last_summary = state.get('last_summary')
        self.history = list(state.get('history') or [])

    def load_state_dict(self, state: dict) -> None:
        if self.sampler is None:
            self._resumed_state = state
        else:
            self._apply_state(state)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.sampler is None:
            if self._resumed_state is not None:
                checkpoint[CKPT_KEY] = self._resumed_state
            return
        checkpoint[CKPT_KEY] = self.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return
        state = checkpoint.get(CKPT_KEY)
        if state is None:
            print_log(
                'BalanceMixHook: the resumed checkpoint has no `balance_mix` '
                'state; the minority sampler starts uniform.', 'current',
                logging.WARNING)
            return
        self.load_state_dict(state)


# ----------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------
def _derived_seed(seed: Optional[int], salt: int, epoch: int,
                  rank: int) -> int:
    return hash((int(seed or 0), salt, int(epoch), int(rank))) & 0x7FFFFFFF


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_pass_worker(worker_id: int, seed: int) -> None:
    _seed_everything(seed + 7919 * (worker_id + 1))


def _seeded(loader, seed: int):
    """Iterate ``loader`` with the random transforms (the views) seeded by
    ``seed``: its (non-persistent) workers get a ``worker_init_fn`` from
    ``seed``; without workers the global ``random`` / ``numpy`` / ``torch``
    generators are seeded for the pass and restored after it, so the
    training randomness is not disturbed."""
    if getattr(loader, 'num_workers', 0) > 0:
        loader.worker_init_fn = partial(_seed_pass_worker, seed=seed)
        yield from loader
        return
    states = (random.getstate(), np.random.get_state(),
              torch.get_rng_state())
    _seed_everything(seed)
    try:
        yield from loader
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def _split_views(data: dict, model) -> tuple:
    """Preprocess a batch of the refinement pass. With ``view_transforms``
    every sample's ``inputs`` is a list ``[plain, view_1, view_2]``
    (``MultiView``): returns the preprocessed plain batch and the two
    preprocessed view batches; otherwise the batch and None."""
    inputs = data['inputs']
    # MultiView packs [plain, view_1, view_2] per sample; both collates
    # transpose it to one entry per view: a list of the samples' tensors
    # (pseudo_collate) or a stacked batch (default_collate)
    per_view = isinstance(inputs, (list, tuple)) and len(inputs) > 0 and (
        isinstance(inputs[0], (list, tuple)) or
        (isinstance(inputs[0], torch.Tensor) and inputs[0].dim() == 4))
    if not per_view:
        return model.data_preprocessor(data, False), None
    if len(inputs) != 3:
        raise ValueError(
            'BalanceMixHook: the refinement pass expects 3 images per sample '
            '(the plain image and two views, MultiView(num_views=[1, 2])), '
            f'got {len(inputs)}.')
    views = list(inputs)
    batches = [
        model.data_preprocessor(
            dict(inputs=v, data_samples=data.get('data_samples')), False)
        for v in views
    ]
    return batches[0], [b['inputs'] for b in batches[1:]]


def _with_views(pipeline: list, view_transforms: list) -> list:
    """``pipeline`` with ``MultiView`` inserted before its last (packing)
    transform: one plain image and two ``view_transforms`` views, Eq. (9)
    (the image is loaded once for all three)."""
    if not pipeline:
        raise ValueError('BalanceMixHook: view_transforms need a '
                         'pass_pipeline ending with the packing transform.')
    multi_view = dict(
        type='MultiView',
        num_views=[1, 2],
        transforms=[[], [dict(t) if isinstance(t, dict) else t
                         for t in view_transforms]])
    return list(pipeline[:-1]) + [multi_view, pipeline[-1]]


def _set_pipeline(dataset_cfg: dict, pipeline: list) -> None:
    """Replace the pipeline of the innermost dataset of a (wrapped) dataset
    config in place."""
    node = dataset_cfg
    while True:
        if 'pipeline' in node:
            node['pipeline'] = pipeline
            return
        inner = node.get('dataset')
        if not isinstance(inner, dict):
            raise ValueError('BalanceMixHook: pass_pipeline given, but the '
                             'training dataset config has no `pipeline`.')
        node = inner


def _clean_labels(store_hook: LabelStoreHook, runner):
    try:
        dataset = store_hook._labelled_dataset(runner)
    except (TypeError, AttributeError):
        return None
    getter = getattr(dataset, 'get_clean_tristate_labels', None)
    if not callable(getter):
        return None
    labels = getter()
    return None if labels is None else np.asarray(labels)


def _fmt(values: Optional[torch.Tensor]) -> str:
    if values is None:
        return 'None'
    return '[' + ', '.join(f'{v:.4g}' for v in values.tolist()) + ']'


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f'{v:.4g}' if math.isfinite(v) else str(v)
    return str(v)
