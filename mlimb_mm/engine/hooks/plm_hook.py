"""Partial Label Masking (PLM, Duarte et al.) with adaptive per-class ratios.

Equations are cited by the paper's numbers
(``shared/seeds/plm_duarte.txt``); where the paper leaves something open,
``METHODS.md`` §2 decides, and the choices left to us are stated in
:class:`PLMHook`'s docstring.
"""
import json
import logging
import math
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

from .head_utils import find_recording_head
from .label_store_hook import get_label_store
from .seed_utils import shared_seed

DATA_BATCH = Optional[Union[dict, tuple, list]]

CKPT_KEY = 'plm'
RATIOS_JSON = 'plm_ratios.json'
_STATE_VERSION = 1
_INIT_CHOICES = ('dataset', 'mean', 'min', 'max')
#: salt of the mask generator's seed, so the masks' random stream differs
#: from a sampler seeded with the same (seed, epoch)
_MASK_SALT = 0x504C4D  # 'PLM'


# ----------------------------------------------------------------------
# the pieces of the method, as functions (tested one by one)
# ----------------------------------------------------------------------
def dataset_ratios(
    observed: torch.Tensor,
    chunk_elems: int = 1 << 24
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positives, negatives and ratio ``r_k = n_k^+ / n_k^-`` per class of
    an ``(N, K)`` tri-state label matrix; unknown labels (-1) count in
    neither. ``r_k`` is float64, ``inf`` for a class without negatives and
    0 for a class without positives. Chunked over rows (no ``(N, K)``
    temporary)."""
    num, num_classes = observed.shape
    pos = torch.zeros(num_classes, dtype=torch.int64)
    neg = torch.zeros(num_classes, dtype=torch.int64)
    step = max(1, chunk_elems // max(1, num_classes))
    for s in range(0, num, step):
        chunk = observed[s:s + step]
        pos += (chunk == 1).sum(0)
        neg += (chunk == 0).sum(0)
    ratio = pos.double() / neg.double()  # n/0 -> inf, 0/0 -> nan
    ratio = torch.where(pos == 0, torch.zeros_like(ratio), ratio)
    return pos, neg, ratio


def keep_probabilities(
        ratio: torch.Tensor, target: torch.Tensor,
        maskable: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eq. (3): the probability of *keeping* (``g = 1``) a positive and a
    negative label of each class.

    - ``r_k > rbar_k``: a positive is kept with probability
      ``rbar_k / r_k``, every negative is kept;
    - ``r_k < rbar_k``: a negative is kept with probability
      ``r_k / rbar_k``, every positive is kept;
    - ``r_k == rbar_k`` or a class that is not ``maskable``: everything is
      kept.

    The expected ratio of kept positives to kept negatives is then
    ``rbar_k``: ``n^+ (rbar/r) / n^- = rbar`` and
    ``n^+ / (n^- r/rbar) = rbar``.

    Returns:
        tuple[Tensor]: ``(p_pos, p_neg)``, float64 ``(K,)`` in [0, 1].
    """
    ratio = ratio.double()
    target = target.double()
    ones = torch.ones_like(ratio)
    over = maskable & (ratio > target)
    under = maskable & (ratio < target)
    p_pos = torch.where(over, target / torch.where(over, ratio, ones), ones)
    p_neg = torch.where(under, ratio / torch.where(under, target, ones), ones)
    return p_pos.clamp(0, 1), p_neg.clamp(0, 1)


def histogram_indices(probs: torch.Tensor, observed: torch.Tensor,
                      num_bins: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Flat bin indices into a ``(2, K, tau)`` histogram (``[0]``
    positives, ``[1]`` negatives) of ``(B, K)`` probabilities with their
    tri-state labels, and the ``(B, K)`` bool selection of observed
    labels. Bins have width ``1 / tau``; ``p = 1`` falls in the last bin.
    """
    num_classes = probs.size(1)
    bins = (probs.float() * num_bins).long().clamp_(0, num_bins - 1)
    obs = observed.to(probs.device).long()
    side = (obs == 0).long()  # 0 for positives, 1 for negatives
    cls = torch.arange(num_classes, device=probs.device).unsqueeze(0)
    flat = (side * num_classes + cls) * num_bins + bins
    return flat, obs >= 0


def smoothed_distribution(counts: torch.Tensor, eps: float) -> torch.Tensor:
    """Normalise histograms ``(..., tau)`` into distributions, add ``eps``
    to every bin and renormalise: ``(h / sum h + eps) / (1 + tau eps)``.
    An empty histogram becomes uniform."""
    counts = counts.double()
    num_bins = counts.size(-1)
    total = counts.sum(-1, keepdim=True)
    dist_ = counts / total.clamp(min=1)
    return (dist_ + eps) / (1 + num_bins * eps)


def kl_divergence(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``KL(pred || target) = sum_b pred_b log(pred_b / target_b)`` over the
    last dim; both strictly positive distributions."""
    return (pred * (pred.log() - target.log())).sum(-1)


def plm_divergences(
        hist: torch.Tensor,
        eps: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. (5): ``D+_k = KL(P^+_hat || P^+)`` and ``D-_k = KL(P^-_hat ||
    P^-)`` from a ``(2, K, tau)`` count histogram (``[0]`` positives,
    ``[1]`` negatives).

    The ground-truth distributions put all mass in the last bin
    (positives: 1) and in the first bin (negatives: 0); both the predicted
    and the ground-truth distributions are smoothed with ``eps``
    (:func:`smoothed_distribution`) so that KL is finite.

    Returns:
        tuple[Tensor]: ``D+``, ``D-`` (float64 ``(K,)``) and ``seen``, the
        bool ``(K,)`` of classes with at least one positive and one negative
        prediction in the histogram.
    """
    hist = hist.detach().to('cpu', torch.float64)
    num_bins = hist.size(-1)
    gt = torch.zeros_like(hist)
    gt[0, :, num_bins - 1] = 1
    gt[1, :, 0] = 1
    divergence = kl_divergence(smoothed_distribution(hist, eps),
                               smoothed_distribution(gt, eps))
    seen = (hist[0].sum(-1) > 0) & (hist[1].sum(-1) > 0)
    return divergence[0], divergence[1], seen


def zscore(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Eq. (6): ``(x - mu) / sigma`` over the ``valid`` entries (population
    standard deviation); 0 for the others, and 0 everywhere when fewer than
    two entries are valid or they are all equal."""
    values = values.double()
    out = torch.zeros_like(values)
    if int(valid.sum()) < 2:
        return out
    sel = values[valid]
    sigma = sel.std(unbiased=False)
    if not torch.isfinite(sigma) or float(sigma) <= 1e-12:
        return out
    out[valid] = (sel - sel.mean()) / sigma
    return out


def ratio_step(
    target: torch.Tensor,
    d_pos: torch.Tensor,
    d_neg: torch.Tensor,
    valid: torch.Tensor,
    lam: float,
    clip: Optional[Tuple[Optional[float], Optional[float]]] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eq. (6)-(7): ``D = zscore(D+) - zscore(D-)`` over the ``valid``
    classes and ``rbar <- exp(lambda D) rbar`` (then clipped) for them;
    the other classes keep their ratio and get ``D = 0``.

    Sign: a class whose positives are under-predicted has a large ``D+``
    (positive z-score), so ``D > 0`` and its ratio rises (fewer negatives
    kept); a class whose negatives are over-predicted has a large ``D-``,
    so ``D < 0`` and its ratio falls (fewer positives kept).

    Returns:
        tuple[Tensor]: the new ratio and ``D`` (float64 ``(K,)``).
    """
    d = zscore(d_pos, valid) - zscore(d_neg, valid)
    d = torch.where(valid, d, torch.zeros_like(d))
    new = torch.exp(lam * d) * target.double()
    new = torch.where(valid, _clip(new, clip), target.double())
    return new, d


def _clip(values: torch.Tensor, clip) -> torch.Tensor:
    if clip is None or (clip[0] is None and clip[1] is None):
        return values
    low, high = clip
    return values.clamp(min=low, max=high)


def mask_seed(seed: int, epoch: int) -> int:
    """The generator seed of the masks of ``epoch`` (the same on every rank
    for the same ``seed``)."""
    state = np.random.SeedSequence(
        [int(seed) % (1 << 63), int(epoch),
         _MASK_SALT]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])  # < 2 ** 63


@HOOKS.register_module()
class PLMHook(Hook):
    r"""Partial Label Masking (Duarte et al.): mask individual labels out of
    the loss so that each class is trained with a target positive/negative
    ratio ``rbar_k``, adapted every epoch from the epoch's own training
    predictions (Algorithm 1).

    **Ratios.** The dataset ratio ``r_k = n_k^+ / n_k^-`` counts the
    observed positives and negatives of class k in the label store's
    ``observed`` field; unknown labels (-1) count in neither (partial
    labels). The initial target ``rbar_{k,1}`` is ``r_k`` (``init_ratio=
    'dataset'``, the paper's default), or the mean / min / max of ``r`` over
    the classes (Table 6's ablation), a number, or a list of K numbers.
    A class without observed positives or without observed negatives has no
    ratio to balance: it is never masked and its ratio never changes.

    **Masks**, Eq. (3), drawn at ``before_train_epoch`` for every (image,
    class) from the current ``rbar`` (Algorithm 1, line 3) and fixed for the
    epoch: ``g = 1`` (keep) with probability

    - ``rbar_k / r_k`` for a positive of a class with ``r_k > rbar_k``,
    - ``r_k / rbar_k`` for a negative of a class with ``r_k < rbar_k``,
    - 1 otherwise (the other side of those classes, classes with
      ``r_k == rbar_k``, unknown labels, classes without a ratio),

    so the expected kept ratio of class k is ``rbar_k``. The draw uses a
    ``torch.Generator`` seeded by :func:`mask_seed` ``(seed, epoch)``: every
    rank draws the same masks without communication (the seed is broadcast
    from rank 0 once). The masks live in the label store as the uint8 field
    ``mask_field`` (written in place on every rank, identical everywhere,
    never queued for sync) -- not in the dataset, whose workers are
    persistent. In ``before_train_iter`` the rows of the batch's
    ``sample_idx`` are multiplied into each data sample's ``label_weight``
    (created as ones when absent), which
    :class:`~mlimb_mm.models.heads.TriStateLinearClsHead` multiplies into
    the loss weight: PLM composes with any loss taking a per-label weight
    (BCE, focal, DB, partial-label losses) and with other weighting hooks.
    The hook has priority ``'NORMAL'``, after ``LabelStoreHook``
    (``'ABOVE_NORMAL'``), so a ``label_weight`` injected from the store is
    multiplied, not overwritten.

    **Ratio adaptation**, Eq. (4)-(7), at ``after_train_epoch``:

    - Histograms, Eq. (4) and appendix B: per class, ``tau`` bins of width
      ``1 / tau`` of the predicted probabilities ``sigmoid(z)`` of the
      positives and of the negatives, accumulated in ``after_train_iter``
      from the logits the head computed for its loss in that step (no extra
      forward pass; read with the head's ``pop_train_predictions`` API) and
      the observed labels of the batch's ``sample_idx``. Masked labels are
      counted too by default (``count_masked=True``): Eq. (4) takes the sets
      over all images and Algorithm 1 line 9 builds the distributions "from
      all y and y_hat"; masking changes the loss, not what is measured.
      Unknown labels are not counted. The ``(2, K, tau)`` counts are summed
      over ranks (one all-reduce) at the epoch end.
    - Eq. (5): ``D+_k = KL(P^+_hat || P^+)``, ``D-_k = KL(P^-_hat ||
      P^-)``, the predicted distribution first, as the paper writes it.
      The ground-truth distributions put all mass in the last bin
      (positives) or the first bin (negatives), so **both** histograms are
      smoothed: each bin of the normalised histogram gets ``kl_eps``
      (default ``1e-6``) added, then the histogram is renormalised
      (divided by ``1 + tau * kl_eps``). With ``kl_eps = 1e-6`` a
      distribution entirely in the wrong bin has ``KL ~ log(1/eps) =
      13.8``.
    - Eq. (6): ``D+`` and ``D-`` are z-scored over the classes (mean and
      population standard deviation over the classes that have a ratio and
      had both positives and negatives in the epoch's histograms; the others
      get ``D = 0`` and keep their ratio).
    - Eq. (7): ``D = D+~ - D-~`` and ``rbar <- exp(lambda D) rbar``, then
      clipped to ``clip`` if given (the paper clips to ``[0, 1]`` on COCO;
      the clip is also applied to the initial ratio, so ``rbar`` always lies
      in the clip range). Sign: positives under-predicted -> ``D+`` large
      -> ``D > 0`` -> ratio up -> more negatives masked (tail classes);
      negatives over-predicted -> ``D-`` large -> ``D < 0`` -> ratio down
      -> more positives masked (head classes). The new ratio is broadcast
      from rank 0 so that every rank holds bitwise the same values.

    **Logging.** Each epoch the ratios are printed, set in the message hub
    (``runner.message_hub.update_info('plm/ratios', list)``) and appended to
    :attr:`history` (``history[e]`` is the ratio used by the masks of epoch
    ``e``, 0-based; ``history[0]`` is the initial ratio). Rank 0 writes the
    whole history (with ``D+``, ``D-`` per epoch, the dataset ratios and the
    class names) to ``runner.log_dir/plm_ratios.json`` after every update,
    for a plot of head ratios falling and tail ratios rising (the paper's
    Fig. 2).

    **Checkpoints** hold ``checkpoint['plm']``: the seed, the current
    ratio, the dataset ratio, the history (ratios and divergences), the
    epoch of the current masks and the epoch's partial histograms with
    their epoch. It is restored only when resuming (like ``EMAHook``). The
    masks themselves are a function of (seed, epoch, ratio) and are redrawn
    at the next ``before_train_epoch``: bitwise the masks an uninterrupted
    run would have drawn. MMEngine's ``EpochBasedTrainLoop`` restarts an
    interrupted epoch from its first batch, so partial histograms of a
    mid-epoch checkpoint are discarded when that epoch restarts (keeping
    them would count its first batches twice); an epoch-end checkpoint is
    saved after the update (``CheckpointHook`` has lower priority), so a
    resumed run continues with the updated ratio.

    **Cost.** Masks: one ``(N, K)`` uint8 label-store field (1 B/label, per
    rank; COCO 6.6 MB) and, once per epoch, ``N * K`` uniform draws made in
    row chunks of at most ``chunk_elems`` labels (a few times
    ``4 * chunk_elems`` bytes of temporaries); the masked fraction is
    counted in the same pass. Per training step: one ``(B, K)`` mask
    gather and ``B`` per-sample multiplies (``before_train_iter``), one
    ``(B, K)`` sigmoid, binning and ``bincount`` on the logits' device
    (``after_train_iter``), O(B K). State: the ``(2, K, tau)`` int64
    histogram (``16 K tau`` bytes) plus ``K`` float64 per epoch of history.
    Epoch end: one all-reduce of ``2 K tau`` int64 and one broadcast of
    ``K`` float64. Python loops run over row chunks and over the ``B``
    samples of a batch only, never over labels.

    Note:
        - Needs ``dict(type='LabelStoreHook')`` in ``custom_hooks`` (for the
          observed labels and the mask field) and a head with the training
          prediction API of
          :class:`~mlimb_mm.models.heads.TriStateLinearClsHead`
          (``enable_train_predictions`` / ``pop_train_predictions``).
        - Epoch-based training only: masks are per epoch and the ratio is
          updated at the epoch end (an ``IterBasedTrainLoop`` has a single
          "epoch" and is refused).
        - The histograms use the predictions made in training mode (with
          augmentation and dropout), as the paper's Algorithm 1 (lines 6
          and 9). Padded repeats of a distributed sampler are counted as
          seen.

    Args:
        lam (float): ``lambda`` of Eq. (7), the rate of change of the ratio.
            Defaults to 0.01 (the paper's MultiMNIST, COCO and CIFAR-100).
        num_bins (int): ``tau``, bins of the probability histograms.
            Defaults to 10.
        init_ratio (str | float | list): ``'dataset'`` (``r_k``, default),
            ``'mean'``, ``'min'``, ``'max'`` (of ``r`` over the classes that
            have one), a number, or a list of K numbers.
        clip (tuple, optional): ``(low, high)`` bounds of the ratio (either
            may be None). Defaults to None (the paper uses ``(0, 1)`` on
            COCO).
        kl_eps (float): The smoothing added to every bin before KL.
            Defaults to 1e-6.
        count_masked (bool): Count masked labels in the histograms.
            Defaults to True (see above).
        seed (int, optional): Seed of the masks; defaults to the runner's
            seed (rank 0's, broadcast).
        mask_field (str): Name of the label-store field holding the masks.
            Defaults to ``'plm_mask'``.
        update_ratio (bool): Adapt the ratio at epoch ends. False gives
            PLM with a fixed ratio (the "mean ratio" variant with
            ``init_ratio='mean'``). Defaults to True.
        chunk_elems (int): Labels per chunk of the mask draw. Defaults to
            ``2 ** 24``.

    Examples:
        >>> custom_hooks = [
        ...     dict(type='LabelStoreHook'),
        ...     dict(type='PLMHook', lam=0.01, clip=(0, 1)),
        ... ]
    """

    priority = 'NORMAL'
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
        if isinstance(init_ratio, str):
            if init_ratio not in _INIT_CHOICES:
                raise ValueError(
                    f'PLMHook: init_ratio {init_ratio!r} must be one of '
                    f'{_INIT_CHOICES}, a number or a list of K numbers.')
        elif isinstance(init_ratio, (int, float)):
            if not init_ratio > 0:
                raise ValueError('PLMHook: a numeric init_ratio must be > 0, '
                                 f'got {init_ratio}.')
        else:
            init_ratio = [float(v) for v in init_ratio]
            if not all(v > 0 and math.isfinite(v) for v in init_ratio):
                raise ValueError('PLMHook: init_ratio values must be finite '
                                 'and > 0.')
        if clip is not None:
            if len(clip) != 2:
                raise ValueError(
                    f'PLMHook: clip must be (low, high), got {clip!r}.')
            clip = tuple(None if c is None else float(c) for c in clip)
            if None not in clip and clip[0] > clip[1]:
                raise ValueError(f'PLMHook: clip {clip} has low > high.')
        self.lam = float(lam)
        self.num_bins = num_bins
        self.init_ratio = init_ratio
        self.clip = clip
        self.kl_eps = float(kl_eps)
        self.count_masked = count_masked
        self.seed = seed
        self.mask_field = mask_field
        self.update_ratio = update_ratio
        self.chunk_elems = int(chunk_elems)

        # state (see state_dict)
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

    # ------------------------------------------------------------------
    # set-up
    # ------------------------------------------------------------------
    @staticmethod
    def _find_head(runner):
        return find_recording_head(runner.model, 'PLMHook')

    def _initial_ratio(self, ratio: torch.Tensor,
                       maskable: torch.Tensor) -> torch.Tensor:
        init = self.init_ratio
        valid = ratio[maskable]
        if isinstance(init, str):
            if init == 'dataset':
                target = ratio.clone()
            else:
                if valid.numel() == 0:
                    target = ratio.clone()
                else:
                    value = dict(mean=valid.mean(),
                                 min=valid.min(),
                                 max=valid.max())[init]
                    target = torch.full_like(ratio, float(value))
        elif isinstance(init, (int, float)):
            target = torch.full_like(ratio, float(init))
        else:
            if len(init) != ratio.numel():
                raise ValueError(
                    f'PLMHook: init_ratio has {len(init)} values, the '
                    f'dataset {ratio.numel()} classes.')
            target = torch.tensor(init, dtype=torch.float64)
        target = _clip(target, self.clip)
        # classes without a ratio keep r: never masked, never updated
        return torch.where(maskable, target, ratio)

    def before_train(self, runner) -> None:
        """Read the dataset ratios from the label store, set the initial
        target ratio (or the resumed one), fix the seed and register with
        the head.

        Args:
            runner (Runner): The runner of the training process.
        """
        from mmengine.runner import IterBasedTrainLoop
        loop = getattr(runner, 'train_loop', None)
        if isinstance(loop, IterBasedTrainLoop):
            raise TypeError(
                'PLMHook draws masks per epoch and updates the ratios at '
                'epoch ends: it needs an epoch-based training loop, not '
                'IterBasedTrainLoop.')
        store = get_label_store(runner)
        pos, neg, ratio = dataset_ratios(store['observed'], self.chunk_elems)
        self.dataset_ratio = ratio
        self.maskable = (pos > 0) & (neg > 0)
        self.ratio = self._initial_ratio(ratio, self.maskable)
        self.history = [self.ratio.clone()]
        self.kl_history = []
        self._seed = shared_seed(self.seed, runner)
        dataset = getattr(getattr(runner, 'train_dataloader', None), 'dataset',
                          None)
        metainfo = getattr(dataset, 'metainfo', None)
        classes = metainfo.get('classes') if isinstance(metainfo,
                                                        dict) else None
        self._classes = [str(c) for c in classes] if classes else None
        if self._resumed_state is not None:
            self._apply_state(self._resumed_state)
            self._resumed_state = None
        self._head = self._find_head(runner)
        self._head.enable_train_predictions(self.CONSUMER)
        print_log(
            f'PLMHook: {int(self.maskable.sum())}/{ratio.numel()} classes '
            'have a positive/negative ratio; dataset ratios '
            f'{_fmt(self.dataset_ratio)}; target ratios '
            f'{_fmt(self.ratio)}.', 'current', logging.INFO)

    def after_train(self, runner) -> None:
        """Stop the head's recording."""
        if self._head is not None:
            self._head.disable_train_predictions(self.CONSUMER)

    # ------------------------------------------------------------------
    # masks, Eq. (3)
    # ------------------------------------------------------------------
    def draw_masks(self, store, epoch: int) -> dict:
        """Draw the masks of ``epoch`` from the current ratio into the
        store's ``mask_field`` (in place, identical on every rank).

        Returns:
            dict: per-class int64 counts ``pos``, ``neg`` (observed) and
            ``pos_kept``, ``neg_kept`` after masking.
        """
        observed = store['observed']
        num, num_classes = observed.shape
        mask = store.add_field(self.mask_field, torch.uint8, fill=1)
        p_pos, p_neg = keep_probabilities(self.dataset_ratio, self.ratio,
                                          self.maskable)
        p_pos, p_neg = p_pos.float(), p_neg.float()
        gen = torch.Generator().manual_seed(mask_seed(self._seed, epoch))
        stats = {
            k: torch.zeros(num_classes, dtype=torch.int64)
            for k in ('pos', 'neg', 'pos_kept', 'neg_kept')
        }
        step = max(1, self.chunk_elems // max(1, num_classes))
        for s in range(0, num, step):
            obs = observed[s:s + step]
            u = torch.rand(obs.shape, generator=gen)
            is_pos, is_neg = obs == 1, obs == 0
            keep_p = torch.where(
                is_pos, p_pos,
                torch.where(is_neg, p_neg, torch.ones_like(p_neg)))
            keep = u < keep_p  # u in [0, 1): probability 1 always keeps
            mask[s:s + step] = keep
            stats['pos'] += is_pos.sum(0)
            stats['neg'] += is_neg.sum(0)
            stats['pos_kept'] += (is_pos & keep).sum(0)
            stats['neg_kept'] += (is_neg & keep).sum(0)
        self.mask_epoch = int(epoch)
        return stats

    def before_train_epoch(self, runner) -> None:
        """Draw the epoch's masks (Algorithm 1, line 3) and reset the
        histograms.

        Args:
            runner (Runner): The runner of the training process.
        """
        store = get_label_store(runner)
        stats = self.draw_masks(store, runner.epoch)
        self.last_mask_stats = stats
        self.hist = None
        self.hist_epoch = int(runner.epoch)
        masked_pos = int((stats['pos'] - stats['pos_kept']).sum())
        masked_neg = int((stats['neg'] - stats['neg_kept']).sum())
        print_log(
            f'PLMHook: epoch {runner.epoch + 1}: masked {masked_pos}/'
            f'{int(stats["pos"].sum())} positives and {masked_neg}/'
            f'{int(stats["neg"].sum())} negatives.', 'current', logging.INFO)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Multiply the batch's mask rows into each data sample's
        ``label_weight`` (created as ones when absent).

        Args:
            runner (Runner): The runner of the training process.
            batch_idx (int): The index of the current batch in the epoch.
            data_batch (dict, optional): Data from the dataloader.
        """
        samples = _data_samples(data_batch)
        if not samples:
            return
        store = get_label_store(runner)
        if self.mask_epoch != runner.epoch or self.mask_field not in store:
            self.before_train_epoch(runner)  # not called for this epoch
        idx = _sample_indices(samples, 'PLMHook')
        rows = store.get(self.mask_field, idx)
        for sample, row in zip(samples, rows):
            if 'label_weight' in sample:
                old = sample.get('label_weight')
                weight = old * row.to(device=old.device, dtype=old.dtype)
            else:
                weight = row.float()
            sample.set_field(weight, 'label_weight')

    # ------------------------------------------------------------------
    # histograms and ratio update, Eq. (4)-(7)
    # ------------------------------------------------------------------
    def accumulate(self, store, logits: torch.Tensor,
                   sample_idx: torch.Tensor) -> None:
        """Add a batch's predictions ``sigmoid(logits)`` ``(B, K)`` of the
        images ``sample_idx`` ``(B,)`` to the histograms (Eq. (4))."""
        if logits.dim() != 2 or logits.size(0) != sample_idx.numel():
            raise ValueError(f'PLMHook: {tuple(logits.shape)} logits for '
                             f'{sample_idx.numel()} sample indices.')
        num_classes = store.num_classes
        if logits.size(1) != num_classes:
            raise ValueError(
                f'PLMHook: the head predicts {logits.size(1)} classes, the '
                f'label store has {num_classes}.')
        probs = torch.sigmoid(logits.detach().float())
        observed = store.get('observed', sample_idx)
        flat, sel = histogram_indices(probs, observed, self.num_bins)
        if not self.count_masked and self.mask_field in store:
            sel &= store.get(self.mask_field, sample_idx).to(sel.device).bool()
        size = 2 * num_classes * self.num_bins
        counts = torch.bincount(flat[sel], minlength=size)
        if self.hist is None:
            self.hist = torch.zeros((2, num_classes, self.num_bins),
                                    dtype=torch.int64,
                                    device=counts.device)
        self.hist += counts.view_as(self.hist).to(self.hist.device)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Accumulate the step's predictions (from the head) into the
        histograms.

        Args:
            runner (Runner): The runner of the training process.
            batch_idx (int): The index of the current batch in the epoch.
            data_batch (dict, optional): Data from the dataloader.
            outputs (dict, optional): Outputs from the model.
        """
        if self._head is None:
            self._head = self._find_head(runner)
            self._head.enable_train_predictions(self.CONSUMER)
        records = self._head.pop_train_predictions(self.CONSUMER)
        if not records:
            return
        store = get_label_store(runner)
        for record in records:
            idx = record.get('sample_idx')
            if idx is None:
                samples = _data_samples(data_batch)
                if not samples or len(samples) != record['logits'].size(0):
                    raise KeyError(
                        'PLMHook: the head recorded predictions without '
                        "sample_idx; keep 'sample_idx' in the meta_keys of "
                        'PackMultiLabelInputs.')
                idx = _sample_indices(samples, 'PLMHook')
            self.accumulate(store, record['logits'], idx)

    def update_ratio_from_histograms(self) -> torch.Tensor:
        """Eq. (5)-(7) from :attr:`hist` (already summed over ranks):
        update :attr:`ratio` and return ``D``."""
        num_classes = self.ratio.numel()
        hist = self.hist if self.hist is not None else torch.zeros(
            (2, num_classes, self.num_bins), dtype=torch.int64)
        d_pos, d_neg, seen = plm_divergences(hist, self.kl_eps)
        valid = seen & self.maskable
        new, d = ratio_step(self.ratio, d_pos, d_neg, valid, self.lam,
                            self.clip)
        self.ratio = new
        self.kl_history.append((d_pos, d_neg))
        return d

    def after_train_epoch(self, runner) -> None:
        """Sum the histograms over ranks, update the ratio (Algorithm 1,
        lines 9-11), log it and write ``plm_ratios.json``.

        Args:
            runner (Runner): The runner of the training process.
        """
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
            f'PLMHook: epoch {runner.epoch + 1}: D {_fmt(d)}; target ratios '
            f'for the next epoch {_fmt(self.ratio)}.', 'current', logging.INFO)
        self.dump_history(runner)

    # ------------------------------------------------------------------
    # history
    # ------------------------------------------------------------------
    def history_dict(self) -> dict:
        """The history as plain JSON-able lists (``inf`` -> None)."""
        return dict(classes=self._classes,
                    lam=self.lam,
                    num_bins=self.num_bins,
                    init_ratio=self.init_ratio,
                    clip=None if self.clip is None else list(self.clip),
                    kl_eps=self.kl_eps,
                    dataset_ratio=_jsonable(self.dataset_ratio),
                    epochs=list(range(len(self.history))),
                    ratios=[_jsonable(r) for r in self.history],
                    kl_pos=[_jsonable(p) for p, _ in self.kl_history],
                    kl_neg=[_jsonable(n) for _, n in self.kl_history])

    def dump_history(self, runner) -> Optional[str]:
        """Write :meth:`history_dict` to ``runner.log_dir/plm_ratios.json``
        (rank 0 only); returns the path written."""
        log_dir = getattr(runner, 'log_dir', None)
        if log_dir is None or not dist.is_main_process():
            return None
        os.makedirs(log_dir, exist_ok=True)
        path = osp.join(log_dir, RATIOS_JSON)
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.history_dict(), f)
        os.replace(tmp, path)
        return path

    # ------------------------------------------------------------------
    # checkpointing
    # ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Plain tensors, ints and lists (loadable with
        ``torch.load(weights_only=True)``)."""
        return dict(
            version=_STATE_VERSION,
            seed=self._seed,
            ratio=None if self.ratio is None else self.ratio.clone(),
            dataset_ratio=None
            if self.dataset_ratio is None else self.dataset_ratio.clone(),
            history=torch.stack(self.history) if self.history else None,
            kl_pos=torch.stack([p for p, _ in self.kl_history])
            if self.kl_history else None,
            kl_neg=torch.stack([n for _, n in self.kl_history])
            if self.kl_history else None,
            mask_epoch=self.mask_epoch,
            hist=None if self.hist is None else self.hist.cpu().clone(),
            hist_epoch=self.hist_epoch)

    def _apply_state(self, state: dict) -> None:
        ratio = torch.as_tensor(state['ratio']).to('cpu', torch.float64)
        if self.dataset_ratio is not None and \
                ratio.numel() != self.dataset_ratio.numel():
            raise ValueError(
                f'PLMHook: the checkpoint holds {ratio.numel()} ratios, the '
                f'dataset has {self.dataset_ratio.numel()} classes.')
        saved_r = state.get('dataset_ratio')
        if saved_r is not None and self.dataset_ratio is not None and \
                not torch.equal(torch.as_tensor(saved_r).double(),
                                self.dataset_ratio):
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
        # The epoch of a mid-epoch checkpoint restarts from its first batch
        # (EpochBasedTrainLoop): its histograms are reset by
        # before_train_epoch; kept here only until then.
        hist = state.get('hist')
        self.hist = None if hist is None else torch.as_tensor(hist).clone()
        self.hist_epoch = state.get('hist_epoch')

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (now if the hook is set up, else at
        ``before_train``)."""
        if self.dataset_ratio is None:
            self._resumed_state = state
        else:
            self._apply_state(state)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Save the state as ``checkpoint['plm']``.

        Args:
            runner (Runner): The runner of the training process.
            checkpoint (dict): Model's checkpoint.
        """
        if self.ratio is None:
            if self._resumed_state is not None:
                checkpoint[CKPT_KEY] = self._resumed_state
            return
        checkpoint[CKPT_KEY] = self.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the state when resuming (like ``EMAHook``; ``load_from``
        without resume starts PLM afresh).

        Args:
            runner (Runner): The runner of the training process.
            checkpoint (dict): Model's checkpoint.
        """
        if not getattr(runner, '_resume', False):
            return
        state = checkpoint.get(CKPT_KEY)
        if state is None:
            print_log(
                'PLMHook: the resumed checkpoint has no `plm` state; the '
                'ratios start from init_ratio.', 'current', logging.WARNING)
            return
        self.load_state_dict(state)


# ----------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------
def _data_samples(data_batch):
    if isinstance(data_batch, dict):
        return data_batch.get('data_samples')
    return None


def _sample_indices(samples, who: str) -> torch.Tensor:
    try:
        return torch.as_tensor(
            [int(s.metainfo['sample_idx']) for s in samples],
            dtype=torch.int64)
    except KeyError:
        raise KeyError(
            f"{who}: data samples must carry metainfo['sample_idx'] (keep "
            "'sample_idx' in the meta_keys of PackMultiLabelInputs)."
        ) from None


def _jsonable(values: Optional[torch.Tensor]):
    if values is None:
        return None
    return [v if math.isfinite(v) else None for v in values.tolist()]


def _fmt(values: torch.Tensor) -> str:
    return '[' + ', '.join(f'{v:.4g}' for v in values.tolist()) + ']'
