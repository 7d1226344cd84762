"""COMIC (Zhang et al., ICCV 2023, "Learning in Imperfect Environment:
Multi-Label Classification with Long-Tailed Distribution and Partial
Labels"): the math of its three modules as pure functions on tensors.

- Correction, the Reflective Label Corrector, Eq. (2)-(3):
  :func:`correct_labels`, :func:`apply_corrections`.
- Modification, the Multi-Focal Modifier loss, Eq. (4)-(6):
  :func:`head_tail_factor`, :func:`multi_focal_modifier`.
- Balance, the Head-Tail Balancer, Eq. (7)-(11):
  :func:`moving_vector_step` (Eq. 7), :func:`additive_attention_weights`
  (Eq. 8), :func:`cosine_logits` (Eq. 9, and Eq. 10 with a moving vector),
  :func:`distillation_probs`, :func:`batch_mean_ap` and
  :func:`distillation_kappas` (Eq. 11).
- The branch samplers of the authors' code: :func:`stream_class_probabilities`.
- The corrections against the clean labels: :func:`correction_quality`.

Modules, hooks and the sampler only wire these; what is decided where the
paper is silent is in ``configs/comic/README.md``.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    'head_tail_factor', 'multi_focal_modifier', 'correct_labels',
    'apply_corrections', 'moving_vector_step', 'additive_attention_weights',
    'cosine_logits', 'distillation_probs', 'batch_mean_ap',
    'distillation_kappas', 'stream_class_probabilities', 'STREAM_KINDS',
    'correction_quality'
]

#: the index streams of the branch samplers (``COMICSampler``)
STREAM_KINDS = ('instance', 'reversed', 'balanced')
_TINY = torch.finfo(torch.float32).tiny


# ----------------------------------------------------------------------
# Modification: the Multi-Focal Modifier loss, Eq. (4)-(6)
# ----------------------------------------------------------------------
def head_tail_factor(class_counts, power: float = 1. / 3) -> torch.Tensor:
    """The head-tail factor ``gamma_ht_k`` of Eq. (5), ``(K,)`` float64.

    The class distribution ``p_k = n_k / sum_j n_j`` is max-normalised and
    mapped as in the authors' code: ``(1 - log(p_k / max_j p_j)) ** power``
    (``power`` 1/3). It is 1 for the largest class and grows towards the
    tail. A class without positives counts as seen once (finite factor).
    """
    counts = torch.as_tensor(class_counts).detach().to('cpu', torch.float64)
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError('head_tail_factor: class_counts must be a non-empty '
                         f'1-D sequence, got shape {tuple(counts.shape)}.')
    if not torch.isfinite(counts).all() or (counts < 0).any():
        raise ValueError('head_tail_factor: class_counts must be finite and '
                         'non-negative.')
    if not power > 0:
        raise ValueError(f'head_tail_factor: power must be > 0, got {power}.')
    counts = counts.clamp_min(1.)
    return (1. - torch.log(counts / counts.max())).pow(power)


def multi_focal_modifier(scores: torch.Tensor,
                         targets: torch.Tensor,
                         class_factor: Optional[torch.Tensor] = None,
                         gamma_pos: float = 0.,
                         gamma_neg: float = 3.,
                         w_pos: float = 0.,
                         w_neg: float = 1.,
                         clip: float = 0.05,
                         weigh_loss: bool = True,
                         detach_focal: bool = False,
                         is_prob: bool = False,
                         eps: float = 1e-8) -> torch.Tensor:
    """The element-wise MFM loss, Eq. (6), ``(B, K)`` float32.

    With ``p = sigmoid(z)`` (or ``p = scores`` when ``is_prob``), the
    exponents of Eq. (5) ``gamma+_k = gamma_pos + w_pos * h_k`` and
    ``gamma-_k = gamma_neg + w_neg * h_k`` (``h = class_factor``, 0 when
    None) and the shifted probability of the negatives
    ``p_m = max(p - clip, 0)``::

        L+ = -(1 - p) ** gamma+ * log(p)
        L- = -p_m ** gamma- * log(1 - p_m)
        L  = t * L+ + (1 - t) * L-          (soft targets: linear in t)

    times ``h_k`` when ``weigh_loss`` (the authors' code multiplies the
    loss by the class factor as well). ``detach_focal`` stops the gradient
    through the focal factors (the code's ``disable_torch_grad_focal_loss``).
    Logs and powers are taken in float32; no inf / NaN for any finite input.
    """
    x = scores.float()
    t = targets.to(x)
    if is_prob:
        p = x.clamp(0., 1.)
        log_p = torch.log(p.clamp_min(eps))
        log_q = torch.log((1. - p).clamp_min(eps))
    else:
        p = torch.sigmoid(x)
        log_p = F.logsigmoid(x)
        log_q = F.logsigmoid(-x)
    if clip > 0:
        p_neg = (p - clip).clamp_min(0.)
        log_q = torch.log1p(-p_neg.clamp_max(1. - clip))  # 1 - p_m >= clip
    else:
        p_neg = p
    num_classes = x.size(-1)
    if class_factor is None:
        h = x.new_zeros(num_classes)
    else:
        h = torch.as_tensor(class_factor).to(x)
        if h.shape != (num_classes, ):
            raise ValueError(f'multi_focal_modifier: class_factor of shape '
                             f'{tuple(h.shape)} for {num_classes} classes.')
    exp_pos = gamma_pos + w_pos * h
    exp_neg = gamma_neg + w_neg * h
    base_pos, base_neg = 1. - p, p_neg
    if detach_focal:
        base_pos, base_neg = base_pos.detach(), base_neg.detach()
    focal_pos = base_pos.clamp_min(_TINY).pow(exp_pos)
    focal_neg = base_neg.clamp_min(_TINY).pow(exp_neg)
    loss = -(t * focal_pos * log_p + (1. - t) * focal_neg * log_q)
    if weigh_loss and class_factor is not None:
        loss = loss * h
    return loss


# ----------------------------------------------------------------------
# Correction: the Reflective Label Corrector, Eq. (2)-(3)
# ----------------------------------------------------------------------
def correct_labels(probs: torch.Tensor,
                   tristate: torch.Tensor,
                   tau: float = 0.7,
                   mean_probs: Optional[torch.Tensor] = None,
                   include_negatives: bool = False) -> torch.Tensor:
    """Eq. (2): the ``(B, K)`` bool mask of the labels that become positive:
    unknown labels (``tristate == -1``) whose probability exceeds
    ``max(tau, Pbar_k)`` (``mean_probs``, ``(K,)``; only ``tau`` when None).
    Observed labels are never selected, except the negatives (0) with
    ``include_negatives`` (the paper's binary labels, where 0 is a negative
    or a missing positive)."""
    if probs.shape != tristate.shape:
        raise ValueError(f'correct_labels: probabilities {tuple(probs.shape)}'
                         f' and labels {tuple(tristate.shape)} differ.')
    threshold = torch.full((probs.size(-1), ), float(tau),
                           dtype=torch.float32, device=probs.device)
    if mean_probs is not None:
        threshold = torch.maximum(threshold,
                                  mean_probs.to(threshold).reshape(-1))
    candidates = (tristate == -1) | (tristate == 0) if include_negatives \
        else tristate == -1
    return candidates & (probs.float() > threshold)


def apply_corrections(targets: torch.Tensor, weights: torch.Tensor,
                      corrected: torch.Tensor, scale: float = 1.
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eq. (3): the corrected labels become positive targets weighted
    ``scale * B / N_corr`` (``B`` rows, ``N_corr`` corrected labels); every
    other label keeps its target and weight."""
    batch_size = targets.size(0)
    num = corrected.sum().clamp_min(1).to(torch.float32)
    corrected_weight = scale * batch_size / num
    targets = torch.where(corrected, torch.ones_like(targets), targets)
    weights = torch.where(corrected, corrected_weight.to(weights), weights)
    return targets, weights


# ----------------------------------------------------------------------
# Balance: the Head-Tail Balancer, Eq. (7)-(11)
# ----------------------------------------------------------------------
def moving_vector_step(previous: torch.Tensor, batch_mean: torch.Tensor,
                       mu: float = 0.9) -> torch.Tensor:
    """Eq. (7) in the feature form of the authors' code (as TDE):
    ``e_t = mu * e_{t-1} + s_t``, ``s_t`` the batch-mean feature."""
    return mu * previous + batch_mean.to(previous)


def additive_attention_weights(query: torch.Tensor, keys: torch.Tensor,
                               w_query: torch.Tensor, w_key: torch.Tensor,
                               w_value: torch.Tensor) -> torch.Tensor:
    """Eq. (8)'s additive (Bahdanau) attention: ``(B, M)`` softmax weights
    of the ``M`` keys ``(B, M, D)`` for each query ``(B, D)``::

        a_bm = softmax_m(w_v . tanh(W_q q_b + W_k k_bm))

    ``w_query`` / ``w_key``: ``(H, D)``, ``w_value``: ``(1, H)``. The
    attended feature is ``sum_m a_bm k_bm`` (keys are the values)."""
    hidden = torch.tanh(
        F.linear(query.float(), w_query.float()).unsqueeze(1) +
        F.linear(keys.float(), w_key.float()))
    scores = F.linear(hidden, w_value.float()).squeeze(-1)
    return torch.softmax(scores, dim=-1)


def _split_normalise(x: torch.Tensor, num_heads: int, offset: float,
                     eps: float) -> torch.Tensor:
    rows, dim = x.shape
    parts = x.float().reshape(rows, num_heads, dim // num_heads)
    norm = parts.norm(dim=-1, keepdim=True)
    return parts / (norm + offset).clamp_min(eps)


def cosine_logits(features: torch.Tensor,
                  weight: torch.Tensor,
                  num_heads: int = 2,
                  scale: float = 16.,
                  norm_offset: float = 1. / 32,
                  moving: Optional[torch.Tensor] = None,
                  beta: float = 0.,
                  eps: float = 1e-12) -> torch.Tensor:
    """The normalised multi-head cosine classifier, Eq. (9), ``(B, K)``
    float32; with a moving vector, Eq. (10).

    Features ``(B, D)`` and class weights ``(K, D)`` are split into
    ``num_heads`` groups of ``D / num_heads`` channels; in each group the
    feature is L2-normalised and the weight divided by ``||w|| +
    norm_offset`` (the code's "causal norm", offset 1/32), and the logit is
    ``scale / num_heads * sum_groups <x_hat, w_hat>``.

    Eq. (10): with ``moving`` (``e_t``, ``(D,)``) and ``beta != 0``, each
    group's normalised feature moves along the normalised moving vector
    before the product: ``x_hat + beta * cos(x_hat, e_hat) * e_hat``;
    ``beta = -1`` removes the component along ``e_t`` (head branch),
    ``beta > 0`` adds it (tail branch). A zero moving vector changes
    nothing.
    """
    dim = features.size(-1)
    if dim % num_heads or weight.size(-1) != dim:
        raise ValueError(
            f'cosine_logits: {dim}-d features, {weight.size(-1)}-d weights '
            f'and num_heads={num_heads} (must divide the dimension).')
    x_hat = _split_normalise(features, num_heads, 0., eps)
    w_hat = _split_normalise(weight, num_heads, norm_offset, eps)
    if moving is not None and beta != 0:
        e_hat = _split_normalise(moving.reshape(1, dim), num_heads, 0., eps)
        cos = (x_hat * e_hat).sum(-1, keepdim=True)
        x_hat = x_hat + beta * cos * e_hat
    return (scale / num_heads) * torch.einsum('bhd,khd->bk', x_hat, w_hat)


def distillation_probs(teacher_logits: torch.Tensor,
                       student_logits: torch.Tensor,
                       phi: str = 'softmax') -> torch.Tensor:
    """Eq. (11)'s ``phi(z_x) * phi(z_b)``: the teacher's (head or tail
    branch, detached) probabilities times the balanced branch's, float32.
    ``phi``: ``'softmax'`` over the classes (the paper) or ``'sigmoid'``."""
    if phi == 'softmax':
        def fn(z):
            return torch.softmax(z.float(), dim=-1)
    elif phi == 'sigmoid':
        def fn(z):
            return torch.sigmoid(z.float())
    else:
        raise ValueError(f"distillation_probs: phi must be 'softmax' or "
                         f"'sigmoid', got {phi!r}.")
    return fn(teacher_logits).detach() * fn(student_logits)


def batch_mean_ap(scores: torch.Tensor, targets: torch.Tensor,
                  valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean over classes of the average precision of one batch, a scalar
    float32 tensor (0 when no class has a positive): for each class with a
    positive among its ``valid`` rows, the mean over its positives of the
    precision at the positive's rank (scores sorted descending, ties in row
    order)."""
    s = scores.detach().float()
    t = (targets.detach() > 0.5)
    if valid is not None:
        valid = valid.detach().bool()
        t = t & valid
        s = torch.where(valid, s, torch.full_like(s, -math.inf))
    order = torch.argsort(s, dim=0, descending=True, stable=True)
    hits = torch.gather(t, 0, order).float()
    ranks = torch.arange(1, s.size(0) + 1, device=s.device,
                         dtype=torch.float32).unsqueeze(1)
    precision = hits.cumsum(0) / ranks
    positives = hits.sum(0)
    has = positives > 0
    if not has.any():
        return s.new_zeros(())
    ap = (precision * hits).sum(0)[has] / positives[has]
    return ap.mean()


def distillation_kappas(score_head: Union[float, torch.Tensor],
                        score_tail: Union[float, torch.Tensor],
                        alpha: float = 2.) -> Tuple[float, float]:
    """Eq. (11)'s adaptive weights ``kappa_h = A_h^a / (A_h^a + A_t^a)`` and
    ``kappa_t = A_t^a / (A_h^a + A_t^a)`` from the branches' scores ``A``
    (clamped at 0); 1/2 each when both are 0."""
    a = max(float(score_head), 0.)**alpha
    b = max(float(score_tail), 0.)**alpha
    if not math.isfinite(a + b) or a + b <= 0:
        return 0.5, 0.5
    return a / (a + b), b / (a + b)


# ----------------------------------------------------------------------
# the branch samplers of the authors' code
# ----------------------------------------------------------------------
def stream_class_probabilities(class_counts: Sequence[int],
                               kind: str) -> Optional[np.ndarray]:
    """The probability with which a re-sampled stream picks each class
    (then an image of it), ``(K,)`` float64, 0 for classes without images:

    - ``'reversed'``: ``proportional to n_max / n_k`` (tail classes first);
    - ``'balanced'``: uniform over the classes that have images;
    - ``'instance'``: None (images are drawn uniformly, not by class).
    """
    if kind not in STREAM_KINDS:
        raise ValueError(f'stream_class_probabilities: unknown stream '
                         f'{kind!r}; choose from {STREAM_KINDS}.')
    if kind == 'instance':
        return None
    counts = np.asarray(class_counts, dtype=np.float64)
    present = counts > 0
    if not present.any():
        raise ValueError('stream_class_probabilities: no class has images.')
    weights = np.zeros_like(counts)
    if kind == 'reversed':
        weights[present] = counts.max() / counts[present]
    else:
        weights[present] = 1.
    return weights / weights.sum()


# ----------------------------------------------------------------------
# quality of the corrections against the clean labels
# ----------------------------------------------------------------------
def _ratio(num: int, den: int) -> Optional[float]:
    return None if den == 0 else num / den


def correction_quality(corrected: torch.Tensor,
                       observed: torch.Tensor,
                       clean: Optional[torch.Tensor] = None,
                       groups: Optional[dict] = None) -> dict:
    """Counts of a set of corrected labels (``(N, K)`` bool) and, with the
    clean labels (``(N, K)`` 1 / 0 / -1), their precision (clean positives
    among the corrected labels whose clean label is known) and the recall
    of the missing positives (clean positives not observed as positives:
    unknown, or written as 0 as in the paper's files), overall and per
    class group (``groups``: name -> class indices).

    Returns:
        dict: ``corrected``, ``per_class`` (K ints) and, with clean labels,
        ``true``, ``false``, ``missing``, ``precision``, ``recall`` (None
        when undefined), ``per_class_true`` and ``groups`` (name ->
        ``precision`` / ``recall`` / ``corrected``).
    """
    corrected = torch.as_tensor(corrected).bool()
    device = corrected.device
    out = dict(corrected=int(corrected.sum()),
               per_class=corrected.sum(0).tolist())
    if clean is None:
        return out
    clean = torch.as_tensor(clean).to(device)
    hidden = (torch.as_tensor(observed).to(device) != 1) & (clean == 1)
    true = corrected & (clean == 1)
    false = corrected & (clean == 0)

    def summary(cols=None):
        def count(x):
            return int((x if cols is None else x[:, cols]).sum())
        return dict(corrected=count(corrected),
                    precision=_ratio(count(true), count(true) + count(false)),
                    recall=_ratio(count(true & hidden), count(hidden)))

    out.update(true=int(true.sum()), false=int(false.sum()),
               missing=int(hidden.sum()), per_class_true=true.sum(0).tolist())
    overall = summary()
    out.update(precision=overall['precision'], recall=overall['recall'])
    out['groups'] = {
        name: summary(torch.as_tensor(np.asarray(cols), dtype=torch.long,
                                      device=device))
        for name, cols in (groups or {}).items()
    }
    return out
