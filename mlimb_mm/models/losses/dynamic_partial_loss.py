import logging
from typing import Optional

import torch
import torch.nn as nn
from mmengine import dist
from mmengine.logging import print_log
from mmpretrain.registry import MODELS

from ..utils.partial_labels import (BALANCE_COUNTS, D_FORMS,
                                    all_negative_penalty,
                                    batch_balance, dynamic_coefficient,
                                    dynamic_partial_terms, pick_seed,
                                    pick_unknown)
from .multi_label_bce_loss import reduce_elementwise_loss


@MODELS.register_module()
class DynamicPartialLoss(nn.Module):
    r"""The dynamic loss for partially annotated labels, Eq. (8)-(12) of
    Zhang et al., "Towards Imbalanced Large Scale Multi-label Classification
    with Partially Annotated Labels". Per image::

        L = -p alpha [ 1/N_e  sum_obs y log yhat
                      + d/qN_ne sum_picked ytilde log yhat ]
            -p beta  [ 1/N_e  sum_obs (1-y) log(1-yhat)
                      + d/qN_ne sum_picked (1-ytilde) log(1-yhat) ]

    ``beta = max(P/T, gamma)`` and ``alpha = 1 - beta`` from the batch (P
    observed positives of T observed labels, or of all its labels with
    ``balance_count='all'``), ``d = exp((e_c + m) / e_T)``
    (Eq. 9), ``p = penalty`` for an image whose predictions are all below
    ``penalty_threshold`` (the text of Eq. 10; the printed formula says the
    opposite), and each step a random ``q`` of every image's unknown labels
    (Eq. 12; the others cost nothing). The pseudo labels ``ytilde`` are the
    targets of the unknown labels (``gt_score`` from ``PseudoLabelHook``).
    Each part can be switched off (Table VII). Notes:
    ``configs/partial_labels/README.md``.

    Needs ``TriStateLinearClsHead(pass_tristate=True, ignore_unknown=False)``
    (the tri-state labels; unknown labels keep their weight) and the epoch
    from a hook (``PseudoLabelHook`` or ``LossEpochHook`` call
    :meth:`set_epoch`). A per-label ``weight`` (e.g. PLM masks through the
    head's ``label_weight``) and the optional ``label_weighting`` module's
    ``compute_reweight`` of the observed positives (e.g. DB's re-weighting)
    multiply each term. Float32 whatever the input dtype.

    Args:
        gamma (float): Lower bound of beta. Defaults to 0.05.
        balance_count (str): T of P/T: ``'observed'`` labels (default), or
            ``'all'`` labels of the batch (for positive-only labels, PPL /
            SPL, where ``'observed'`` gives ``P/T = 1``, ``alpha = 0``).
        m (float): ``m`` of Eq. (9). Defaults to 3.
        d_form (str): ``'eq9'`` as printed, or ``'text'``:
            ``exp((e_c + m) / e_T - 1)``, 1 at epoch ``e_T - m``.
        penalty (float): ``p`` of an all-negative image. Defaults to 2.
        penalty_threshold (float): Defaults to 0.1.
        q (float): Fraction of the unknown labels picked per step.
            Defaults to 0.5.
        use_balance, use_dynamic, use_penalty, use_pseudo, use_pick (bool):
            alpha/beta (else 1), d (else 1), p (else 1), the pseudo-label
            term (else only observed labels), the q pick (else all unknown
            labels). All True by default.
        balance_pseudo (bool): alpha / beta also on the pseudo-label part,
            as Eq. (11) writes it (default). False (not in the paper) keeps
            them on the observed labels only: with alpha > beta the
            pseudo-label part's optimum ``alpha y / (alpha y + beta (1-y))``
            lies above its target, so the pseudo labels drift towards 1
            epoch after epoch (README).
        seed (int, optional): Seed of the picks (with the epoch, the step
            and the rank); the run's seed (set by the hook) when None.
        label_weighting (dict, optional): Config of a module with
            ``compute_reweight(target) -> (B, K) | None``, e.g.
            ``dict(type='DistributionBalancedLoss', preset='R-BCE')`` (its
            class statistics from ``ClassStatisticsHook``), given the
            observed positives. Defaults to None.
        reduction (str): ``'mean'`` (sum over classes divided by
            ``avg_factor``, the batch size from the head), ``'sum'`` or
            ``'none'``. Defaults to ``'mean'``.
        loss_weight (float): Defaults to 1.0.
    """

    def __init__(self,
                 gamma: float = 0.05,
                 balance_count: str = 'observed',
                 m: float = 3.,
                 d_form: str = 'eq9',
                 penalty: float = 2.,
                 penalty_threshold: float = 0.1,
                 q: float = 0.5,
                 use_balance: bool = True,
                 use_dynamic: bool = True,
                 use_penalty: bool = True,
                 use_pseudo: bool = True,
                 use_pick: bool = True,
                 balance_pseudo: bool = True,
                 seed: Optional[int] = None,
                 label_weighting: Optional[dict] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0):
        super().__init__()
        if not 0. <= float(q) <= 1.:
            raise ValueError(f'DynamicPartialLoss: q must be in [0, 1], got '
                             f'{q}.')
        if not 0. <= float(gamma) <= 1.:
            raise ValueError('DynamicPartialLoss: gamma must be in [0, 1], '
                             f'got {gamma}.')
        if balance_count not in BALANCE_COUNTS:
            raise ValueError('DynamicPartialLoss: balance_count must be one '
                             f'of {BALANCE_COUNTS}, got {balance_count!r}.')
        if d_form not in D_FORMS:
            raise ValueError(f'DynamicPartialLoss: d_form must be one of '
                             f'{D_FORMS}, got {d_form!r}.')
        if reduction not in ('mean', 'sum', 'none'):
            raise ValueError(f'DynamicPartialLoss: unknown reduction '
                             f'{reduction!r}.')
        self.gamma = float(gamma)
        self.balance_count = balance_count
        self.m = float(m)
        self.d_form = d_form
        self.penalty = float(penalty)
        self.penalty_threshold = float(penalty_threshold)
        self.q = float(q)
        self.use_balance = bool(use_balance)
        self.use_dynamic = bool(use_dynamic)
        self.use_penalty = bool(use_penalty)
        self.use_pseudo = bool(use_pseudo)
        self.use_pick = bool(use_pick)
        self.balance_pseudo = bool(balance_pseudo)
        self.seed = seed
        self.label_weighting = None
        if label_weighting is not None:
            self.label_weighting = MODELS.build(label_weighting) if \
                isinstance(label_weighting, dict) else label_weighting
            if not callable(getattr(self.label_weighting, 'compute_reweight',
                                    None)):
                raise TypeError(
                    'DynamicPartialLoss: label_weighting must have a '
                    f'compute_reweight(target) method, got '
                    f'{type(self.label_weighting).__name__}.')
        self.reduction = reduction
        self.loss_weight = float(loss_weight)
        self.epoch: Optional[int] = None
        self.max_epochs: Optional[int] = None
        self._run_seed = 0
        self._step = 0
        self._warned = False
        self.last_stats: dict = {}

    # ------------------------------------------------------------------
    # set by hooks
    # ------------------------------------------------------------------
    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """The 0-based current epoch ``e_c`` and the total ``e_T`` of
        Eq. (9); restarts the step count of the picks' seeds."""
        if int(max_epochs) < 1:
            raise ValueError('DynamicPartialLoss.set_epoch: max_epochs must '
                             f'be >= 1, got {max_epochs}.')
        self.epoch, self.max_epochs = int(epoch), int(max_epochs)
        self._step = 0

    def set_seed(self, seed: int) -> None:
        """The run's seed, used for the picks when ``seed`` is None."""
        self._run_seed = int(seed)

    def dynamic_coefficient(self) -> float:
        """``d`` of the current epoch (1 when switched off or when no hook
        has set the epoch, with a warning once)."""
        if not self.use_dynamic:
            return 1.
        if self.epoch is None:
            if not self._warned and self.training:
                print_log(
                    'DynamicPartialLoss: no epoch set, so d = 1; add '
                    "dict(type='PseudoLabelHook') or "
                    "dict(type='LossEpochHook') to custom_hooks.", 'current',
                    logging.WARNING)
                self._warned = True
            return 1.
        return dynamic_coefficient(self.epoch, self.max_epochs, self.m,
                                   self.d_form)

    def generator(self) -> torch.Generator:
        """The CPU generator of this step's pick (seed, epoch, step, rank);
        advances the step count."""
        seed = self._run_seed if self.seed is None else self.seed
        epoch = 0 if self.epoch is None else self.epoch
        gen = torch.Generator().manual_seed(
            pick_seed(seed, epoch, self._step, dist.get_rank()))
        self._step += 1
        return gen

    # ------------------------------------------------------------------
    def forward(self,
                cls_score: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                tristate: Optional[torch.Tensor] = None,
                **kwargs) -> torch.Tensor:
        """
        Args:
            cls_score (Tensor): Logits, ``(B, K)``, any float dtype.
            target (Tensor): ``(B, K)``: observed labels where ``tristate``
                is not -1, pseudo labels where it is.
            weight (Tensor, optional): Per-label weights ``(B, K)``.
            avg_factor (float, optional): Denominator of ``'mean'`` (the
                head passes the batch size).
            reduction_override (str, optional): Overrides ``reduction``.
            tristate (Tensor): ``(B, K)`` labels 1 / 0 / -1 (the head's
                ``pass_tristate=True``).
        """
        if tristate is None:
            raise ValueError(
                'DynamicPartialLoss needs the tri-state labels: use '
                'TriStateLinearClsHead(pass_tristate=True, '
                'ignore_unknown=False).')
        if cls_score.dim() != 2 or not (cls_score.shape == target.shape ==
                                        tristate.shape):
            raise ValueError(
                'DynamicPartialLoss expects (B, K) logits, targets and '
                f'tri-state labels, got {tuple(cls_score.shape)}, '
                f'{tuple(target.shape)} and {tuple(tristate.shape)}.')
        with torch.autocast(device_type=cls_score.device.type,
                            enabled=False):
            alpha, beta = batch_balance(tristate, self.gamma,
                                        self.balance_count) \
                if self.use_balance else (1., 1.)
            d = self.dynamic_coefficient()
            p = all_negative_penalty(
                cls_score, self.penalty_threshold, self.penalty) \
                if self.use_penalty else None
            picked = None
            if self.use_pseudo:
                unknown = tristate == -1
                picked = pick_unknown(unknown, self.q, self.generator()) \
                    if self.use_pick else unknown
            if self.label_weighting is not None:
                extra = self.label_weighting.compute_reweight(
                    (tristate == 1).float())
                if extra is not None:
                    extra = extra.to(cls_score.device, torch.float32)
                    weight = extra if weight is None else \
                        weight.to(extra) * extra
            terms = dynamic_partial_terms(cls_score, target, tristate,
                                          picked, alpha, beta, d, p, weight,
                                          self.balance_pseudo)
            self.last_stats = dict(alpha=alpha, beta=beta, d=d)
            loss = reduce_elementwise_loss(
                terms, None, reduction_override or self.reduction,
                avg_factor if avg_factor is not None else terms.size(0))
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return (f'gamma={self.gamma}, balance_count={self.balance_count!r}, '
                f'm={self.m}, d_form={self.d_form!r}, '
                f'penalty={self.penalty}, q={self.q}, '
                f'use_balance={self.use_balance}, '
                f'use_dynamic={self.use_dynamic}, '
                f'use_penalty={self.use_penalty}, '
                f'use_pseudo={self.use_pseudo}, use_pick={self.use_pick}, '
                f'balance_pseudo={self.balance_pseudo}')
