import logging
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine import dist
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

from ...models.utils.plm import (INIT_CHOICES, dataset_ratios, draw_masks,
                                 histogram_indices, initial_ratio,
                                 keep_probabilities, plm_divergences,
                                 ratio_step)
from .hook_utils import (derive_seed, find_recording_head, format_vector,
                         jsonable, pop_recorded_predictions, shared_seed,
                         write_json_history)
from .label_store_hook import StoreField, get_label_store
from .stateful_hook import StatefulHook

DATA_BATCH = Optional[Union[dict, tuple, list]]

RATIOS_JSON = 'plm_ratios.json'
_STATE_VERSION = 1
#: names the masks' random stream in :func:`derive_seed`
_MASK_SALT = 0x504C4D  # 'PLM'


def mask_seed(seed: int, epoch: int) -> int:
    """The generator seed of the masks of ``epoch`` (every rank alike)."""
    return derive_seed(seed, epoch, _MASK_SALT)


@HOOKS.register_module()
class PLMHook(StatefulHook):
    r"""Partial Label Masking (Duarte et al.): mask labels out of the loss so
    that each class trains with a target positive/negative ratio
    ``rbar_k``, adapted every epoch from the epoch's own training
    predictions (Algorithm 1). Notes and results: ``configs/plm/README.md``.

    - ``before_train``: dataset ratios ``r_k = n_k^+ / n_k^-`` from the
      label store's observed labels (unknown labels count in neither); a
      class without positives or negatives is never masked.
    - ``before_train_epoch``: masks of Eq. (3) for every (image, class),
      seeded by (seed, epoch) so every rank draws the same, into the store
      field ``mask_field``; ``LabelStoreHook`` multiplies its rows into each
      batch's ``label_weight``, so PLM composes with any loss taking a
      per-label weight.
    - ``after_train_iter``: per-class histograms of the probabilities of
      positives and negatives, Eq. (4), from the logits the head computed
      for its loss (no extra forward pass).
    - ``after_train_epoch``: histograms summed over ranks, Eq. (5)-(7):
      ``D+``/``D-`` (KL against one-bin ground truths, both smoothed with
      ``kl_eps``), z-scored over classes, ``rbar <- exp(lam D) rbar``,
      clipped; the history goes to ``log_dir/plm_ratios.json``.

    Needs ``dict(type='LabelStoreHook')`` and a head recording its training
    predictions (``TriStateLinearClsHead``); epoch-based loops only.

    Args:
        lam (float): ``lambda`` of Eq. (7). Defaults to 0.01.
        num_bins (int): ``tau``, histogram bins. Defaults to 10.
        init_ratio (str | float | list): ``'dataset'`` (``r_k``, default),
            ``'mean'``, ``'min'``, ``'max'`` of ``r``, a number or K numbers.
        clip (tuple, optional): ``(low, high)`` bounds of the ratio (either
            may be None); the paper clips to ``(0, 1)`` on COCO. Defaults
            to None.
        kl_eps (float): Smoothing added to every bin before KL. Defaults to
            1e-6.
        count_masked (bool): Count masked labels in the histograms.
            Defaults to True.
        seed (int, optional): Seed of the masks; the runner's when None.
        mask_field (str): Label-store field of the masks. Defaults to
            ``'plm_mask'``.
        update_ratio (bool): Adapt the ratio at epoch ends (False: a fixed
            ratio). Defaults to True.
        chunk_elems (int): Labels per chunk of the mask draw. Defaults to
            ``2 ** 24``.

    Examples:
        >>> custom_hooks = [dict(type='LabelStoreHook'),
        ...                 dict(type='PLMHook', lam=0.01, clip=(0, 1))]
    """

    priority = 'NORMAL'
    ckpt_key = 'plm'
    CONSUMER = 'PLMHook'

    def __init__(self,
                 lam: float = 0.01,
                 num_bins: int = 10,
                 init_ratio: Union[str, float, Sequence[float]] = 'dataset',
                 clip: Optional[Sequence[Optional[float]]] = None,
                 kl_eps: float = 1e-6,
                 count_masked: bool = True,
                 seed: Optional[int] = None,
                 mask_field: str = 'plm_mask',
                 update_ratio: bool = True,
                 chunk_elems: int = 1 << 24):
        if not (isinstance(num_bins, int) and num_bins >= 2):
            raise ValueError(
                f'PLMHook: num_bins must be an int >= 2, got {num_bins!r}.')
        if not (kl_eps > 0 and math.isfinite(kl_eps)):
            raise ValueError(f'PLMHook: kl_eps must be > 0, got {kl_eps}.')
        if not math.isfinite(lam):
            raise ValueError(f'PLMHook: lam must be finite, got {lam}.')
        self.init_ratio = _check_init_ratio(init_ratio)
        self.clip = _check_clip(clip)
        self.lam = float(lam)
        self.num_bins = num_bins
        self.kl_eps = float(kl_eps)
        self.count_masked = count_masked
        self.seed = seed
        self.mask_field = mask_field
        self.update_ratio = update_ratio
        self.chunk_elems = int(chunk_elems)

        self.ratio: Optional[torch.Tensor] = None  # rbar, float64 (K,)
        self.dataset_ratio: Optional[torch.Tensor] = None  # r, float64 (K,)
        self.maskable: Optional[torch.Tensor] = None  # bool (K,)
        self.history: List[torch.Tensor] = []  # rbar per epoch
        self.kl_history: List[Tuple[torch.Tensor, torch.Tensor]] = []
        self.mask_epoch: Optional[int] = None
        self.hist: Optional[torch.Tensor] = None  # (2, K, tau) int64
        self.hist_epoch: Optional[int] = None
        self.last_mask_stats: Optional[dict] = None
        self._seed: Optional[int] = None
        self._head = None
        self._resumed_state: Optional[dict] = None
        self._classes: Optional[List[str]] = None

    def label_store_fields(self) -> List[StoreField]:
        """The masks, multiplied into every batch's ``label_weight``."""
        return [StoreField(self.mask_field, 'uint8', 1, 'label_weight',
                           'multiply')]

    def before_train(self, runner) -> None:
        """Dataset ratios, the initial (or resumed) target ratio, the seed;
        start recording the head's training predictions."""
        from mmengine.runner import IterBasedTrainLoop
        if isinstance(getattr(runner, 'train_loop', None),
                      IterBasedTrainLoop):
            raise TypeError(
                'PLMHook draws masks per epoch and updates the ratios at '
                'epoch ends: it needs an epoch-based training loop, not '
                'IterBasedTrainLoop.')
        store = get_label_store(runner)
        pos, neg, ratio = dataset_ratios(store['observed'], self.chunk_elems)
        self.dataset_ratio = ratio
        self.maskable = (pos > 0) & (neg > 0)
        self.ratio = initial_ratio(ratio, self.maskable, self.init_ratio,
                                   self.clip)
        self.history = [self.ratio.clone()]
        self.kl_history = []
        self._seed = shared_seed(self.seed, runner)
        metainfo = getattr(runner.train_dataloader.dataset, 'metainfo', None)
        classes = metainfo.get('classes') if isinstance(metainfo,
                                                        dict) else None
        self._classes = [str(c) for c in classes] if classes else None
        self.restore_resumed_state()
        self._head = find_recording_head(runner.model, 'PLMHook')
        self._head.enable_train_predictions(self.CONSUMER)
        print_log(
            f'PLMHook: {int(self.maskable.sum())}/{ratio.numel()} classes '
            'have a positive/negative ratio; dataset ratios '
            f'{format_vector(self.dataset_ratio)}; target ratios '
            f'{format_vector(self.ratio)}.', 'current', logging.INFO)

    def after_train(self, runner) -> None:
        if self._head is not None:
            self._head.disable_train_predictions(self.CONSUMER)

    # ------------------------------------------------------------------
    # masks, Eq. (3)
    # ------------------------------------------------------------------
    def draw_masks(self, store, epoch: int) -> dict:
        """Draw the masks of ``epoch`` into the store's ``mask_field`` (in
        place, identical on every rank); returns the per-class counts of
        :func:`~mlimb_mm.models.utils.plm.draw_masks`."""
        mask = store.add_field(self.mask_field, torch.uint8, fill=1)
        p_pos, p_neg = keep_probabilities(self.dataset_ratio, self.ratio,
                                          self.maskable)
        gen = torch.Generator().manual_seed(mask_seed(self._seed, epoch))
        _, stats = draw_masks(store['observed'], p_pos, p_neg, gen, mask,
                              self.chunk_elems)
        self.mask_epoch = int(epoch)
        return stats

    def before_train_epoch(self, runner) -> None:
        """Draw the epoch's masks (Algorithm 1, line 3); reset the
        histograms."""
        stats = self.draw_masks(get_label_store(runner), runner.epoch)
        self.last_mask_stats = stats
        self.hist = None
        self.hist_epoch = int(runner.epoch)
        masked_pos = int((stats['pos'] - stats['pos_kept']).sum())
        masked_neg = int((stats['neg'] - stats['neg_kept']).sum())
        print_log(
            f'PLMHook: epoch {runner.epoch + 1}: masked {masked_pos}/'
            f'{int(stats["pos"].sum())} positives and {masked_neg}/'
            f'{int(stats["neg"].sum())} negatives.', 'current', logging.INFO)

    # ------------------------------------------------------------------
    # histograms and ratio update, Eq. (4)-(7)
    # ------------------------------------------------------------------
    def accumulate(self, store, logits: torch.Tensor,
                   sample_idx: torch.Tensor) -> None:
        """Add ``sigmoid(logits)`` ``(B, K)`` of the images ``sample_idx``
        ``(B,)`` to the histograms, Eq. (4)."""
        if logits.dim() != 2 or logits.size(0) != sample_idx.numel():
            raise ValueError(f'PLMHook: {tuple(logits.shape)} logits for '
                             f'{sample_idx.numel()} sample indices.')
        num_classes = store.num_classes
        if logits.size(1) != num_classes:
            raise ValueError(
                f'PLMHook: the head predicts {logits.size(1)} classes, the '
                f'label store has {num_classes}.')
        probs = torch.sigmoid(logits.detach().float())
        flat, sel = histogram_indices(probs, store.get('observed',
                                                       sample_idx),
                                      self.num_bins)
        if not self.count_masked and self.mask_field in store:
            sel &= store.get(self.mask_field, sample_idx).to(sel.device).bool()
        counts = torch.bincount(flat[sel],
                                minlength=2 * num_classes * self.num_bins)
        # the histograms stay on the logits' device (no copy per step); a
        # resumed (CPU) one moves there
        if self.hist is None:
            self.hist = torch.zeros((2, num_classes, self.num_bins),
                                    dtype=torch.int64, device=counts.device)
        elif self.hist.device != counts.device:
            self.hist = self.hist.to(counts.device)
        self.hist += counts.view_as(self.hist)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Accumulate the step's predictions (from the head)."""
        if self._head is None:
            self._head = find_recording_head(runner.model, 'PLMHook')
            self._head.enable_train_predictions(self.CONSUMER)
        records = pop_recorded_predictions(self._head, self.CONSUMER,
                                           data_batch, 'PLMHook')
        store = get_label_store(runner) if records else None
        for logits, idx in records:
            self.accumulate(store, logits, idx)

    def update_ratio_from_histograms(self) -> torch.Tensor:
        """Eq. (5)-(7) from :attr:`hist` (summed over ranks): update
        :attr:`ratio`, return ``D``."""
        hist = self.hist if self.hist is not None else torch.zeros(
            (2, self.ratio.numel(), self.num_bins), dtype=torch.int64)
        d_pos, d_neg, seen = plm_divergences(hist, self.kl_eps)
        self.ratio, d = ratio_step(self.ratio, d_pos, d_neg,
                                   seen & self.maskable, self.lam, self.clip)
        self.kl_history.append((d_pos, d_neg))
        return d

    def after_train_epoch(self, runner) -> None:
        """Sum the histograms over ranks, update the ratio (Algorithm 1,
        lines 9-11), log a summary and write ``plm_ratios.json``."""
        num_classes = self.ratio.numel()
        if self.hist is None:
            self.hist = torch.zeros((2, num_classes, self.num_bins),
                                    dtype=torch.int64)
        dist.all_reduce(self.hist, op='sum')
        self.hist = self.hist.cpu()
        if self.update_ratio:
            d = self.update_ratio_from_histograms()
            dist.broadcast(self.ratio, 0)
        else:
            d = torch.zeros(num_classes, dtype=torch.float64)
            self.kl_history.append(plm_divergences(self.hist, self.kl_eps)[:2])
        self.history.append(self.ratio.clone())
        self.hist = None  # consumed
        hub = getattr(runner, 'message_hub', None)
        if hub is not None:
            hub.update_info('plm/ratios', self.ratio.tolist())
        print_log(
            f'PLMHook: epoch {runner.epoch + 1}: D {format_vector(d)}; '
            f'target ratios for the next epoch {format_vector(self.ratio)}.',
            'current', logging.INFO)
        write_json_history(runner, RATIOS_JSON, self.history_dict())

    def history_dict(self) -> dict:
        """The history as plain JSON values (``inf`` -> None)."""
        return dict(classes=self._classes,
                    lam=self.lam,
                    num_bins=self.num_bins,
                    init_ratio=self.init_ratio,
                    clip=None if self.clip is None else list(self.clip),
                    kl_eps=self.kl_eps,
                    dataset_ratio=jsonable(self.dataset_ratio),
                    epochs=list(range(len(self.history))),
                    ratios=[jsonable(r) for r in self.history],
                    kl_pos=[jsonable(p) for p, _ in self.kl_history],
                    kl_neg=[jsonable(n) for _, n in self.kl_history])

    # ------------------------------------------------------------------
    # checkpointing (StatefulHook)
    # ------------------------------------------------------------------
    def is_set_up(self) -> bool:
        return self.dataset_ratio is not None

    def state_dict(self) -> dict:
        """Plain tensors, ints and lists; the masks are redrawn from (seed,
        epoch, ratio), and the partial histograms of a mid-epoch checkpoint
        are dropped when that epoch restarts."""

        def stacked(values):
            return torch.stack(values) if values else None

        return dict(
            version=_STATE_VERSION,
            seed=self._seed,
            ratio=self.ratio.clone(),
            dataset_ratio=self.dataset_ratio.clone(),
            history=stacked(self.history),
            kl_pos=stacked([p for p, _ in self.kl_history]),
            kl_neg=stacked([n for _, n in self.kl_history]),
            mask_epoch=self.mask_epoch,
            hist=None if self.hist is None else self.hist.cpu().clone(),
            hist_epoch=self.hist_epoch)

    def apply_state(self, state: dict) -> None:
        ratio = torch.as_tensor(state['ratio']).to('cpu', torch.float64)
        if ratio.numel() != self.dataset_ratio.numel():
            raise ValueError(
                f'PLMHook: the checkpoint holds {ratio.numel()} ratios, the '
                f'dataset has {self.dataset_ratio.numel()} classes.')
        saved_r = state.get('dataset_ratio')
        if saved_r is not None and not torch.equal(
                torch.as_tensor(saved_r).double(), self.dataset_ratio):
            print_log(
                'PLMHook: the dataset ratios differ from the checkpoint\'s '
                '(another label file?); continuing with the saved target '
                'ratios.', 'current', logging.WARNING)
        self.ratio = ratio
        if state.get('seed') is not None:
            self._seed = int(state['seed'])
        history = state.get('history')
        self.history = [] if history is None else [
            h.to(torch.float64) for h in torch.as_tensor(history)
        ]
        kl_pos, kl_neg = state.get('kl_pos'), state.get('kl_neg')
        self.kl_history = [] if kl_pos is None else [
            (p.double(), n.double()) for p, n in zip(kl_pos, kl_neg)
        ]
        self.mask_epoch = state.get('mask_epoch')
        hist = state.get('hist')
        self.hist = None if hist is None else torch.as_tensor(hist).clone()
        self.hist_epoch = state.get('hist_epoch')


def _check_init_ratio(init_ratio):
    if isinstance(init_ratio, str):
        if init_ratio not in INIT_CHOICES:
            raise ValueError(
                f'PLMHook: init_ratio {init_ratio!r} must be one of '
                f'{INIT_CHOICES}, a number or a list of K numbers.')
        return init_ratio
    if isinstance(init_ratio, (int, float)):
        if not init_ratio > 0:
            raise ValueError('PLMHook: a numeric init_ratio must be > 0, '
                             f'got {init_ratio}.')
        return init_ratio
    init_ratio = [float(v) for v in init_ratio]
    if not all(v > 0 and math.isfinite(v) for v in init_ratio):
        raise ValueError('PLMHook: init_ratio values must be finite and > 0.')
    return init_ratio


def _check_clip(clip):
    if clip is None:
        return None
    if len(clip) != 2:
        raise ValueError(f'PLMHook: clip must be (low, high), got {clip!r}.')
    clip = tuple(None if c is None else float(c) for c in clip)
    if None not in clip and clip[0] > clip[1]:
        raise ValueError(f'PLMHook: clip {clip} has low > high.')
    return clip
