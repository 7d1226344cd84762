"""PLM, partial label masking (Duarte et al.): the masks of Eq. (3) and
the ratio adaptation of Eq. (4)-(7), as functions on tensors.

The hook that wires them into training is
:class:`~mlimb_mm.engine.hooks.PLMHook`; decisions where the paper is
silent are in ``configs/plm/README.md``.
"""
from typing import Optional, Sequence, Tuple, Union

import torch

__all__ = [
    'dataset_ratios', 'initial_ratio', 'keep_probabilities', 'draw_masks',
    'histogram_indices', 'smoothed_distribution', 'kl_divergence',
    'plm_divergences', 'zscore', 'ratio_step', 'clip_ratio'
]

INIT_CHOICES = ('dataset', 'mean', 'min', 'max')


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
    pos = torch.zeros(num_classes, dtype=torch.int64, device=observed.device)
    neg = torch.zeros_like(pos)
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
    new = torch.where(valid, clip_ratio(new, clip), target.double())
    return new, d


def clip_ratio(values: torch.Tensor, clip) -> torch.Tensor:
    """``values`` clamped to ``clip = (low, high)`` (either may be None;
    no clip when ``clip`` is None)."""
    if clip is None or (clip[0] is None and clip[1] is None):
        return values
    low, high = clip
    return values.clamp(min=low, max=high)


def initial_ratio(ratio: torch.Tensor, maskable: torch.Tensor,
                  init: Union[str, float, Sequence[float]],
                  clip=None) -> torch.Tensor:
    """The initial target ratio ``rbar_1`` (float64 ``(K,)``): ``r_k``
    (``'dataset'``, the paper's default), the mean / min / max of ``r``
    over the ``maskable`` classes (Table 6), a number or K numbers, then
    clipped. Classes that are not maskable keep ``r_k``."""
    valid = ratio[maskable]
    if isinstance(init, str):
        if init not in INIT_CHOICES:
            raise ValueError(f'init_ratio {init!r} must be one of '
                             f'{INIT_CHOICES}, a number or K numbers.')
        if init == 'dataset' or valid.numel() == 0:
            target = ratio.clone()
        else:
            value = dict(mean=valid.mean, min=valid.min,
                         max=valid.max)[init]()
            target = torch.full_like(ratio, float(value))
    elif isinstance(init, (int, float)):
        target = torch.full_like(ratio, float(init))
    else:
        if len(init) != ratio.numel():
            raise ValueError(f'init_ratio has {len(init)} values, the '
                             f'dataset {ratio.numel()} classes.')
        target = torch.tensor(list(init), dtype=torch.float64,
                              device=ratio.device)
    return torch.where(maskable, clip_ratio(target, clip), ratio)


def draw_masks(observed: torch.Tensor,
               p_pos: torch.Tensor,
               p_neg: torch.Tensor,
               generator: torch.Generator,
               out: Optional[torch.Tensor] = None,
               chunk_elems: int = 1 << 24) -> Tuple[torch.Tensor, dict]:
    """Eq. (3): keep (1) or mask (0) every observed label of an ``(N, K)``
    tri-state matrix, a positive of class k with probability ``p_pos[k]``,
    a negative with ``p_neg[k]``; unknown labels are kept. One uniform draw
    per label from ``generator`` (a CPU generator: the same masks on any
    device for a seed), in row chunks of about ``chunk_elems``.

    Returns:
        tuple: the uint8 ``(N, K)`` mask (written into ``out`` when given,
        else on ``observed``'s device) and per-class int64 counts ``pos``,
        ``neg``, ``pos_kept``, ``neg_kept`` (on ``observed``'s device).
    """
    num, num_classes = observed.shape
    device = observed.device
    mask = out if out is not None else torch.empty(
        (num, num_classes), dtype=torch.uint8, device=device)
    p_pos, p_neg = p_pos.to(device).float(), p_neg.to(device).float()
    stats = {
        k: torch.zeros(num_classes, dtype=torch.int64, device=device)
        for k in ('pos', 'neg', 'pos_kept', 'neg_kept')
    }
    step = max(1, chunk_elems // max(1, num_classes))
    for s in range(0, num, step):
        obs = observed[s:s + step]
        u = torch.rand(obs.shape, generator=generator).to(device)
        is_pos, is_neg = obs == 1, obs == 0
        keep_p = torch.where(
            is_pos, p_pos, torch.where(is_neg, p_neg,
                                       torch.ones_like(p_neg)))
        keep = u < keep_p  # u in [0, 1): probability 1 always keeps
        mask[s:s + step] = keep.to(mask.device)
        stats['pos'] += is_pos.sum(0)
        stats['neg'] += is_neg.sum(0)
        stats['pos_kept'] += (is_pos & keep).sum(0)
        stats['neg_kept'] += (is_neg & keep).sum(0)
    return mask, stats
