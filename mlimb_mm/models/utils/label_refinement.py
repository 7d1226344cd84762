"""The label-wise management of BalanceMix (Song et al. 2024), Eq. (6)-(10),
as functions on tensors: the 2K per-set GMMs of the per-label losses,
the clean / re-labelled / ambiguous categories, and how good they are
against clean labels. :class:`~mlimb_mm.engine.hooks.LabelRefinementHook`
wires them into training; notes in ``configs/balancemix/README.md``.
"""
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from .gmm import GMMFit, fit_gmm_1d

__all__ = [
    'UNKNOWN', 'CLEAN', 'RELABELLED', 'AMBIGUOUS', 'CATEGORY_NAMES',
    'label_gmm_groups', 'fit_label_gmms', 'categorize_labels',
    'summarize_categories', 'quality_counts', 'group_quality',
    'rank_untrusted_labels'
]

#: label categories of :func:`categorize_labels`
UNKNOWN, CLEAN, RELABELLED, AMBIGUOUS = -1, 0, 1, 2
CATEGORY_NAMES = {UNKNOWN: 'unknown', CLEAN: 'clean',
                  RELABELLED: 'relabelled', AMBIGUOUS: 'ambiguous'}


def label_gmm_groups(observed: torch.Tensor) -> Tuple[torch.Tensor,
                                                      torch.Tensor]:
    """The 2K sets of Eq. (6) of an ``(N, K)`` tri-state label matrix:
    returns the flat indices into the ``(N, K)`` matrix of the observed
    labels (row-major) and their mixture ids, ``k`` for a positive of class
    k and ``K + k`` for a negative (unknown labels, -1, belong to no set).
    """
    observed = torch.as_tensor(observed)
    index = torch.nonzero(observed.reshape(-1) >= 0).squeeze(1)
    return index, _label_group_ids(observed).reshape(-1)[index]


def _label_group_ids(observed: torch.Tensor) -> torch.Tensor:
    """``(N, K)`` mixture id of every label of a tri-state ``(N, K)``
    matrix: ``k`` where it is positive, ``K + k`` elsewhere (the caller
    sets unknown labels apart)."""
    num_classes = observed.size(1)
    classes = torch.arange(num_classes, device=observed.device)
    return torch.where(observed == 1, classes, classes + num_classes)


def _fit_label_gmms_dense(losses: torch.Tensor, observed: torch.Tensor,
                          normalize: bool, unknown_value: float,
                          **kwargs) -> Tuple[torch.Tensor, GMMFit]:
    """:func:`fit_label_gmms` with ``num_bins``: the mixture id of every
    label is computed in the ``(N, K)`` layout (``k`` / ``K + k``; unknown
    labels go to a spare set ``2K`` whose fit is discarded) and the binned
    fit runs over all ``N x K`` entries -- no gather of the observed
    labels. The returned fit's ``posterior`` is flat over all ``N x K``
    labels (unknown ones ``unknown_value``) and its per-mixture fields have
    the ``2K`` mixtures."""
    num_classes = losses.size(1)
    groups = _label_group_ids(observed)
    groups = torch.where(observed >= 0, groups,
                         torch.full_like(groups, 2 * num_classes))
    fit = fit_gmm_1d(losses.reshape(-1), groups.reshape(-1),
                     2 * num_classes + 1, normalize=normalize, **kwargs)
    known = (observed >= 0).reshape(-1)
    clean = fit.posterior
    if not bool(known.all()):
        clean = torch.where(known, clean, torch.full_like(
            clean, float(unknown_value)))
    fit = GMMFit(clean, *[f[:2 * num_classes] for f in fit[1:]])
    return clean.view(losses.shape), fit


def fit_label_gmms(losses: torch.Tensor,
                   observed: torch.Tensor,
                   normalize: bool = True,
                   unknown_value: float = 0.0,
                   **kwargs) -> Tuple[torch.Tensor, GMMFit]:
    """Eq. (6)-(8) for a whole training set: the ``2K`` GMMs of the
    per-label BCE ``losses`` ``(N, K)`` grouped by :func:`label_gmm_groups`
    of ``observed`` (tri-state, ``(N, K)``), min-max normalised per set by
    default (the DivideMix convention).

    Returns:
        tuple: the ``(N, K)`` clean-label probability ``p_G`` (Eq. (8);
        ``unknown_value`` for unknown labels, which belong to no set) and
        the :class:`GMMFit` (mixture ``k``: positives of class k, ``K + k``:
        negatives; its ``posterior`` is per observed label).
    """
    losses = torch.as_tensor(losses)
    observed = torch.as_tensor(observed, device=losses.device)
    if losses.shape != observed.shape or losses.dim() != 2:
        raise ValueError(f'fit_label_gmms: losses {tuple(losses.shape)} and '
                         f'labels {tuple(observed.shape)} must be one (N, K) '
                         'shape.')
    num_classes = losses.size(1)
    if kwargs.get('num_bins') is not None:
        return _fit_label_gmms_dense(losses, observed, normalize,
                                     unknown_value, **kwargs)
    index, groups = label_gmm_groups(observed)
    fit = fit_gmm_1d(losses.reshape(-1)[index], groups, 2 * num_classes,
                     normalize=normalize, **kwargs)
    clean = torch.full((losses.numel(), ), float(unknown_value),
                       dtype=fit.posterior.dtype, device=losses.device)
    clean[index] = fit.posterior
    return clean.view(losses.shape), fit


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
        2 ambiguous; all observed labels are 0 when ``use_clean=False``),
        on ``observed``'s device.
    """
    observed = torch.as_tensor(observed)
    clean_prob = torch.as_tensor(clean_prob).to(observed.device).float()
    mean_pred = torch.as_tensor(mean_pred).to(observed.device).float()
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
    category = torch.full(observed.shape, UNKNOWN, dtype=torch.int8,
                          device=observed.device)
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
    category, targets, weights = [torch.as_tensor(t).to(observed.device)
                                  for t in (category, targets, weights)]
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
        quality = group_quality(
            quality_counts(category, observed, targets, clean_labels),
            {})['all']
        quality.pop('classes')
        out.update(quality)
    return out


def _ratio(num, den) -> Optional[float]:
    den = int(den)
    return None if den == 0 else float(int(num) / den)


def quality_counts(category: torch.Tensor, observed: torch.Tensor,
                   targets: torch.Tensor,
                   clean_labels: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per-class int64 ``(K,)`` counts that score the management against the
    clean tri-state labels (labels unknown in either are left out):
    ``comparable``, ``correct`` (observed = clean), ``marked_clean``,
    ``correct_marked_clean``, ``relabelled``, ``relabelled_right`` (target
    = clean), ``wrong`` (observed != clean) and ``wrong_fixed`` (wrong,
    re-labelled to the clean value)."""
    observed = torch.as_tensor(observed)
    truth = clean_labels if isinstance(clean_labels, torch.Tensor) else \
        torch.as_tensor(np.asarray(clean_labels))
    truth = truth.to(observed.device, torch.int8)
    category = torch.as_tensor(category).to(observed.device)
    targets = torch.as_tensor(targets).to(observed.device)
    if truth.shape != observed.shape:
        raise ValueError(f'clean labels {tuple(truth.shape)} for observed '
                         f'{tuple(observed.shape)}.')
    comparable = (truth >= 0) & (observed >= 0)
    correct = comparable & (truth == observed)
    marked = comparable & (category == CLEAN)
    relabelled = comparable & (category == RELABELLED)
    right = relabelled & ((targets > 0.5) == (truth == 1))
    wrong = comparable & ~correct
    masks = dict(comparable=comparable, correct=correct, marked_clean=marked,
                 correct_marked_clean=correct & marked,
                 relabelled=relabelled, relabelled_right=right, wrong=wrong,
                 wrong_fixed=wrong & right)
    return {name: mask.sum(0).to(torch.int64) for name, mask in masks.items()}


def group_quality(counts: Dict[str, torch.Tensor],
                  groups: Dict[str, np.ndarray]) -> Dict[str, dict]:
    """Precision and recall of the clean selection and of re-labelling (the
    BalanceMix paper's Appendix G) over all classes and each class group
    (``{name: class indices}``) from :func:`quality_counts`; None where a
    ratio has no denominator."""
    out = {}
    for name, classes in dict(all=None, **groups).items():
        sel = {k: (v if classes is None else v[torch.as_tensor(
            np.asarray(classes, dtype=np.int64))]).sum().item()
               for k, v in counts.items()}
        out[name] = dict(
            classes=None if classes is None else len(classes),
            observed_precision=_ratio(sel['correct'], sel['comparable']),
            clean_precision=_ratio(sel['correct_marked_clean'],
                                   sel['marked_clean']),
            clean_recall=_ratio(sel['correct_marked_clean'], sel['correct']),
            relabel_precision=_ratio(sel['relabelled_right'],
                                     sel['relabelled']),
            relabel_recall=_ratio(sel['wrong_fixed'], sel['wrong']))
    return out


def rank_untrusted_labels(observed: torch.Tensor, clean_prob: torch.Tensor,
                          category: torch.Tensor,
                          include_clean: bool = False
                          ) -> Tuple[torch.Tensor, torch.Tensor]:
    """The observed labels ranked from least to most trustworthy (ascending
    clean probability, ties in (image, class) order): ``(L,)`` image and
    class indices. Only the labels not marked clean unless
    ``include_clean``."""
    observed = torch.as_tensor(observed)
    keep = observed >= 0
    if not include_clean:
        keep &= category.to(observed.device) != CLEAN
    clean_prob = clean_prob.to(observed.device)
    flat = torch.nonzero(keep.reshape(-1)).squeeze(1)
    order = torch.sort(clean_prob.reshape(-1)[flat].float(), stable=True)[1]
    flat = flat[order]
    num_classes = observed.size(1)
    return flat // num_classes, flat % num_classes
