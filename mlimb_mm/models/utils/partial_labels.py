"""Partially annotated labels (Zhang et al.): the pseudo labels of Eq. (5)
and the dynamic loss of Eq. (8)-(12), as functions on tensors.

The loss module is :class:`~mlimb_mm.models.losses.DynamicPartialLoss`, the
hook that keeps the pseudo labels is
:class:`~mlimb_mm.engine.hooks.PseudoLabelHook`; decisions where the paper
is silent are in ``configs/partial_labels/README.md``.

Notation: ``z`` the ``(B, K)`` logits, ``yhat = sigmoid(z)``, tri-state
labels ``t`` (1 positive, 0 negative, -1 unknown), targets ``y`` (the
observed label where ``t != -1``, the pseudo label ``ytilde`` where
``t == -1``).
"""
import math
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

# a generator seed from a run seed and keys (epoch, step, rank), the one
# derivation the hooks use too
from ...utils.seeds import derive_seed as pick_seed

__all__ = [
    'initial_pseudo_labels', 'merge_predictions', 'batch_balance',
    'dynamic_coefficient', 'all_negative_penalty', 'num_picked',
    'pick_unknown', 'pick_seed', 'dynamic_partial_terms',
    'pseudo_label_quality', 'D_FORMS', 'BALANCE_COUNTS'
]

#: forms of the dynamic coefficient d, Eq. (9) (see dynamic_coefficient)
D_FORMS = ('eq9', 'text')


def initial_pseudo_labels(targets: torch.Tensor, observed: torch.Tensor,
                          init_value: float = 0.5) -> torch.Tensor:
    """Eq. (5), initialisation: ``targets`` with every unknown label
    (``observed == -1``) set to ``init_value``; observed labels keep their
    value. A new tensor in ``targets``' dtype."""
    if targets.shape != observed.shape:
        raise ValueError(f'targets {tuple(targets.shape)} and observed '
                         f'{tuple(observed.shape)} differ in shape.')
    return torch.where(observed == -1,
                       torch.full_like(targets, float(init_value)), targets)


def merge_predictions(targets: torch.Tensor, observed: torch.Tensor,
                      probs: torch.Tensor) -> torch.Tensor:
    """Eq. (5), update: the predictions ``probs`` on the unknown labels,
    ``targets`` (never overwritten) on the observed ones. Returns a tensor
    in ``targets``' dtype and device."""
    if not targets.shape == observed.shape == probs.shape:
        raise ValueError(
            f'targets {tuple(targets.shape)}, observed '
            f'{tuple(observed.shape)} and probs {tuple(probs.shape)} must '
            'have the same shape.')
    probs = probs.detach().to(targets.device, targets.dtype)
    return torch.where(observed.to(targets.device) == -1, probs, targets)


#: what T of Eq. (8)'s P / T counts (see batch_balance)
BALANCE_COUNTS = ('observed', 'all')


def batch_balance(tristate: torch.Tensor,
                  gamma: float = 0.05,
                  count: str = 'observed') -> Tuple[float, float]:
    """``(alpha, beta)`` of Eq. (8) from a batch's ``(B, K)`` tri-state
    labels: ``beta = max(P / T, gamma)``, ``alpha = 1 - beta``, with ``P``
    the observed positives of the batch and ``T``

    - ``'observed'``: its observed labels (positives and negatives). With
      positive-only labels (PPL, SPL) ``P / T = 1``, so ``alpha = 0``: the
      positive terms vanish.
    - ``'all'``: all its ``B K`` labels.

    A batch without an observed label has ``P / T = 0``, so
    ``beta = gamma``."""
    if count not in BALANCE_COUNTS:
        raise ValueError(f'count must be one of {BALANCE_COUNTS}, got '
                         f'{count!r}.')
    total = int((tristate != -1).sum()) if count == 'observed' else \
        tristate.numel()
    positives = int((tristate == 1).sum())
    ratio = positives / total if total else 0.
    beta = max(ratio, float(gamma))
    return 1. - beta, beta


def dynamic_coefficient(epoch: int,
                        max_epochs: int,
                        m: float = 3.,
                        form: str = 'eq9') -> float:
    """``d`` of Eq. (9) for the 0-based ``epoch`` of ``max_epochs``.

    - ``'eq9'`` (default), as printed: ``d = exp((e_c + m) / e_T)``, always
      above 1 (from ``exp(m / e_T)`` to ``exp((e_T - 1 + m) / e_T)``).
    - ``'text'``: ``d = exp((e_c + m) / e_T - 1)``, which is what the text
      says of Eq. (9): ``d = 1`` (both parts weighed equally) at epoch
      ``e_T - m``, below 1 before, above 1 after.
    """
    if form not in D_FORMS:
        raise ValueError(f'form must be one of {D_FORMS}, got {form!r}.')
    if max_epochs < 1:
        raise ValueError(f'max_epochs must be >= 1, got {max_epochs}.')
    exponent = (float(epoch) + float(m)) / float(max_epochs)
    if form == 'text':
        exponent -= 1.
    return math.exp(exponent)


def all_negative_penalty(logits: torch.Tensor,
                         threshold: float = 0.1,
                         penalty: float = 2.) -> torch.Tensor:
    """``p`` of Eq. (10) per image, ``(B,)`` float32: ``penalty`` for an
    image whose predictions are all below ``threshold``, else 1.

    This is the text's intent ("When the prediction values for all classes
    are less than 0.1, p = 2, otherwise, p = 1"); Eq. (10) as printed,
    ``p = 1 + |sign(sum_i max(yhat_i - 0.1, 0))|``, gives the opposite
    (2 as soon as one prediction exceeds 0.1). No gradient flows through
    ``p``."""
    probs = torch.sigmoid(logits.detach().float())
    all_low = (probs < float(threshold)).all(dim=1)
    return torch.where(all_low, torch.full_like(probs[:, 0], float(penalty)),
                       torch.ones_like(probs[:, 0]))


def num_picked(num_unknown: torch.Tensor, q: float) -> torch.Tensor:
    """How many of an image's ``N_ne`` unknown labels Eq. (12) picks:
    ``floor(q * N_ne + 0.5)`` (``q N_ne`` rounded half up), int64."""
    return torch.floor(num_unknown.double() * float(q) + 0.5).long()


def pick_unknown(unknown: torch.Tensor, q: float,
                 generator: Optional[torch.Generator] = None
                 ) -> torch.Tensor:
    """The random q% pick of Eq. (12): in each row of the ``(B, K)`` bool
    mask ``unknown``, :func:`num_picked` of its unknown labels drawn
    uniformly without replacement (all of them when ``q >= 1``). The draw
    uses ``generator`` (a CPU generator: the same picks on any device for a
    seed). Returns a bool mask on ``unknown``'s device."""
    if not 0. <= float(q) <= 1.:
        raise ValueError(f'q must be in [0, 1], got {q}.')
    if float(q) >= 1.:
        return unknown.clone()
    if float(q) <= 0. or unknown.numel() == 0:
        return torch.zeros_like(unknown)
    keys = torch.rand(unknown.shape, generator=generator)
    keys = keys.to(unknown.device).masked_fill(~unknown, 2.)
    order = keys.argsort(dim=1)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(
        unknown.size(1), device=unknown.device).expand_as(order))
    count = num_picked(unknown.sum(1), q)
    return unknown & (rank < count.unsqueeze(1))


def dynamic_partial_terms(logits: torch.Tensor,
                          targets: torch.Tensor,
                          tristate: torch.Tensor,
                          picked: Optional[torch.Tensor],
                          alpha: float,
                          beta: float,
                          d: float,
                          p: Optional[torch.Tensor],
                          weight: Optional[torch.Tensor] = None,
                          balance_pseudo: bool = True) -> torch.Tensor:
    """The ``(B, K)`` float32 terms of Eq. (12), whose sum over classes is
    each image's loss::

        observed (t != -1): -p/N_e [alpha y log yhat + beta (1-y) log(1-yhat)]
        picked unknown:     -p d/M [alpha y log yhat + beta (1-y) log(1-yhat)]
        other unknown:       0     (L_ned)

    with ``N_e`` the image's observed labels, ``M`` its picked unknown
    labels (``q N_ne``), ``y`` the target (observed label, or pseudo label
    on unknowns). ``picked=None`` drops the non-existing part (no pseudo
    label term); ``p=None`` is ``p = 1``; ``weight`` (per-label, e.g. PLM
    masks or DB re-weighting) multiplies each term, the counts stay those of
    the labels. ``balance_pseudo=False`` (not in the paper) weighs the
    picked unknown labels' terms by 1 instead of alpha / beta. Computed in
    float32 (``log yhat = logsigmoid(z)``, finite
    for any finite logit); an image without observed (or picked) labels has
    no such term, and unpicked unknown labels get exactly zero gradient.
    """
    z = logits.float()
    y = targets.to(z.device, torch.float32).clamp(0, 1)
    tristate = tristate.to(z.device)
    observed = tristate != -1
    log_pos = F.logsigmoid(z)  # log yhat
    log_neg = F.logsigmoid(-z)  # log (1 - yhat)
    per_label = -(alpha * y * log_pos + beta * (1. - y) * log_neg)
    if picked is not None and not balance_pseudo:
        plain = -(y * log_pos + (1. - y) * log_neg)
        per_label = torch.where(observed, per_label, plain)

    num_obs = observed.sum(1, keepdim=True).float()
    scale = torch.where(observed, 1. / num_obs.clamp(min=1.),
                        torch.zeros_like(z))
    if picked is not None:
        picked = picked.to(z.device) & ~observed
        num_pick = picked.sum(1, keepdim=True).float()
        scale = torch.where(picked, float(d) / num_pick.clamp(min=1.), scale)
    if p is not None:
        scale = scale * p.to(z.device, torch.float32).unsqueeze(1)
    if weight is not None:
        scale = scale * weight.to(z.device, torch.float32)
    # where(), not a product, so that an unused label's gradient is exactly 0
    return torch.where(scale != 0, per_label * scale, torch.zeros_like(z))


# ----------------------------------------------------------------------
# pseudo-label quality (history of PseudoLabelHook)
# ----------------------------------------------------------------------
def _ratio(num: torch.Tensor, den: torch.Tensor):
    """``num / den`` (float64), NaN where ``den == 0``."""
    num, den = num.double(), den.double()
    return torch.where(den > 0, num / den.clamp(min=1), torch.full_like(
        num, float('nan')))


def pseudo_label_quality(pseudo: torch.Tensor,
                         observed: torch.Tensor,
                         clean: Optional[torch.Tensor] = None,
                         groups: Optional[Dict[str, np.ndarray]] = None,
                         threshold: float = 0.5,
                         chunk_elems: int = 1 << 24) -> dict:
    """How the pseudo labels on the unknown labels look, per class and
    overall: their count and mean and, with the clean labels (``(N, K)``
    tri-state, from a wrapper that hid the labels), over the unknown labels
    whose clean label is known: the accuracy of ``pseudo >= threshold``
    against it and the mean pseudo label on the hidden positives and on the
    hidden negatives; the same per class group (``groups``: name -> class
    indices). Per-class values are lists (None where undefined). Chunked
    over rows (no ``(N, K)`` temporary)."""
    num, num_classes = observed.shape
    device = observed.device
    sums = {
        key: torch.zeros(num_classes, dtype=torch.float64, device=device)
        for key in ('unknown', 'sum', 'eval', 'correct', 'pos', 'pos_sum',
                    'neg', 'neg_sum')
    }
    step = max(1, chunk_elems // max(1, num_classes))
    for s in range(0, num, step):
        obs = observed[s:s + step]
        values = pseudo[s:s + step].to(device).double()
        unknown = obs == -1
        sums['unknown'] += unknown.sum(0)
        sums['sum'] += torch.where(unknown, values, 0.).sum(0)
        if clean is None:
            continue
        truth = torch.as_tensor(clean[s:s + step]).to(device)
        hidden_pos = unknown & (truth == 1)
        hidden_neg = unknown & (truth == 0)
        predicted = values >= threshold
        sums['eval'] += (hidden_pos | hidden_neg).sum(0)
        sums['correct'] += ((hidden_pos & predicted) |
                            (hidden_neg & ~predicted)).sum(0)
        sums['pos'] += hidden_pos.sum(0)
        sums['pos_sum'] += torch.where(hidden_pos, values, 0.).sum(0)
        sums['neg'] += hidden_neg.sum(0)
        sums['neg_sum'] += torch.where(hidden_neg, values, 0.).sum(0)

    def summary(index=None) -> dict:
        pick = (lambda v: v) if index is None else (
            lambda v: v[torch.as_tensor(index, dtype=torch.long,
                                        device=device)])
        out = dict(num_unknown=int(pick(sums['unknown']).sum()),
                   mean=_scalar(pick(sums['sum']).sum(),
                                pick(sums['unknown']).sum()))
        if clean is not None:
            out.update(
                num_evaluated=int(pick(sums['eval']).sum()),
                accuracy=_scalar(pick(sums['correct']).sum(),
                                 pick(sums['eval']).sum()),
                num_hidden_positives=int(pick(sums['pos']).sum()),
                mean_on_hidden_positives=_scalar(pick(sums['pos_sum']).sum(),
                                                 pick(sums['pos']).sum()),
                mean_on_hidden_negatives=_scalar(pick(sums['neg_sum']).sum(),
                                                 pick(sums['neg']).sum()))
        return out

    result = summary()
    result['mean_per_class'] = _listed(_ratio(sums['sum'], sums['unknown']))
    if clean is not None:
        result['accuracy_per_class'] = _listed(
            _ratio(sums['correct'], sums['eval']))
        result['mean_on_hidden_positives_per_class'] = _listed(
            _ratio(sums['pos_sum'], sums['pos']))
        if groups:
            result['groups'] = {
                name: summary(index) for name, index in groups.items()
            }
    return result


def _scalar(num: torch.Tensor, den: torch.Tensor) -> Optional[float]:
    return float(num / den) if float(den) > 0 else None


def _listed(values: torch.Tensor) -> list:
    return [None if math.isnan(v) else v for v in values.tolist()]
