import inspect
import logging
from typing import List, Optional

import torch
import torch.nn as nn
from mmengine import dist
from mmengine.logging import print_log
from mmpretrain.registry import MODELS

from ..utils.comic import apply_corrections, correct_labels

MEAN_MODES = ('running', 'batch')
DISTRIBUTIONS = ('dynamic', 'static')


@MODELS.register_module()
class ReflectiveLabelCorrectionLoss(nn.Module):
    """COMIC's Reflective Label Corrector (Zhang et al., ICCV 2023,
    Eq. (2)-(3)) around a per-label loss (the MFM loss by default).

    At every training call, an *unknown* label (``tristate == -1``) whose
    probability exceeds ``max(tau, Pbar_k)`` becomes a positive target,
    weighted ``corrected_weight * B / N_corr`` (``N_corr`` corrections in
    the batch of ``B``) instead of its incoming weight; observed labels are
    never changed, uncorrected unknown labels keep the head's target and
    weight (a negative with ``ignore_unknown=False``, the paper's setting).
    ``Pbar_k`` is the running mean of the predictions of class k over all
    past training images (``mean='running'``) or the batch mean (the
    authors' code). With ``distribution='dynamic'`` the inner loss sees the
    class counts ``n_k`` plus the corrections made so far in the epoch
    (Table 5; ``ReflectiveLabelCorrectionHook`` restarts them each epoch),
    with ``'static'`` the training set's. The running sums and the epoch's
    corrections are summed over ranks at every call (one all-reduce of
    ``2K + 1`` numbers), so they are identical on every rank, and kept as
    buffers (checkpointed). Notes: ``configs/comic/README.md``.

    Heads must pass ``tristate=`` (``TriStateLinearClsHead(pass_tristate=
    True, ignore_unknown=False)``, or ``COMICHead``).

    Args:
        loss (dict): The per-label loss. Defaults to
            ``dict(type='MultiFocalModifierLoss')``.
        tau (float): Threshold of Eq. (2). Defaults to 0.7.
        mean (str): ``'running'`` or ``'batch'``. Defaults to ``'running'``.
        corrected_weight (float): ``lambda_c``, times ``B / N_corr``.
            Defaults to 1.
        distribution (str): ``'dynamic'`` or ``'static'``. Defaults to
            ``'dynamic'``.
        correct_negatives (bool): Observed negatives are candidates too
            (labels written as in the paper, 0 for negative or missing:
            ``MissingLabelDataset(missing_as='negative')``). Defaults to
            False: observed labels are never changed.
    """

    def __init__(self,
                 loss: dict = dict(type='MultiFocalModifierLoss'),
                 tau: float = 0.7,
                 mean: str = 'running',
                 corrected_weight: float = 1.,
                 distribution: str = 'dynamic',
                 correct_negatives: bool = False):
        super().__init__()
        name = type(self).__name__
        if not 0 <= tau < 1:
            raise ValueError(f'{name}: tau must be in [0, 1), got {tau}.')
        if mean not in MEAN_MODES:
            raise ValueError(f'{name}: mean must be one of {MEAN_MODES}, got '
                             f'{mean!r}.')
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f'{name}: distribution must be one of '
                             f'{DISTRIBUTIONS}, got {distribution!r}.')
        if not corrected_weight >= 0:
            raise ValueError(f'{name}: corrected_weight must be >= 0, got '
                             f'{corrected_weight}.')
        self.loss = loss if isinstance(loss, nn.Module) else MODELS.build(loss)
        self._loss_params = inspect.signature(self.loss.forward).parameters
        if distribution == 'dynamic' and 'class_counts' not in \
                self._loss_params:
            raise ValueError(
                f"{name}(distribution='dynamic') needs a loss that takes "
                f'class_counts= (MultiFocalModifierLoss); '
                f'{type(self.loss).__name__} does not: use '
                "distribution='static'.")
        self.tau = float(tau)
        self.mean = mean
        self.corrected_weight = float(corrected_weight)
        self.distribution = distribution
        self.correct_negatives = bool(correct_negatives)
        # (K,) buffers, empty until the first call (checkpointed)
        self.register_buffer('prob_sum', torch.zeros(0, dtype=torch.float64))
        self.register_buffer('prob_count', torch.zeros((), dtype=torch.long))
        self.register_buffer('epoch_corrections',
                             torch.zeros(0, dtype=torch.long))
        self._records: Optional[List[dict]] = None  # None: not recording
        self._warned = False

    # ------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in ('prob_sum', 'epoch_corrections'):
            value = state_dict.get(prefix + key)
            held = getattr(self, key)
            if isinstance(value, torch.Tensor) and value.shape != held.shape:
                setattr(self, key, torch.zeros(value.shape, dtype=held.dtype,
                                               device=held.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _ensure_state(self, num_classes: int, device) -> None:
        if self.prob_sum.numel() != num_classes:
            if self.prob_sum.numel():
                raise ValueError(
                    f'{type(self).__name__}: the logits have {num_classes} '
                    f'classes, the running state {self.prob_sum.numel()}.')
            self.prob_sum = torch.zeros(num_classes, dtype=torch.float64,
                                        device=device)
            self.epoch_corrections = torch.zeros(num_classes,
                                                 dtype=torch.long,
                                                 device=device)

    def mean_probs(self) -> Optional[torch.Tensor]:
        """The running ``Pbar`` (``(K,)`` float64), None before any call."""
        if self.prob_sum.numel() == 0 or int(self.prob_count) == 0:
            return None
        return self.prob_sum / self.prob_count.double()

    def reset_epoch_corrections(self) -> None:
        """Restart the dynamic distribution from the training set's counts
        (``ReflectiveLabelCorrectionHook`` calls it every epoch)."""
        self.epoch_corrections.zero_()

    def current_class_counts(self) -> Optional[torch.Tensor]:
        """``n_k`` (+ this epoch's corrections when dynamic)."""
        counts = getattr(self.loss, 'class_counts', None)
        if counts is None or counts.numel() == 0:
            return None
        if self.distribution == 'dynamic' and \
                self.epoch_corrections.numel() == counts.numel():
            return counts + self.epoch_corrections.to(counts)
        return counts

    # ------------------------------------------------------------------
    # records for ReflectiveLabelCorrectionHook
    # ------------------------------------------------------------------
    def enable_correction_records(self) -> None:
        if self._records is None:
            self._records = []

    def disable_correction_records(self) -> None:
        self._records = None

    def pop_corrections(self) -> List[dict]:
        """The training calls since the last pop: ``dict(corrected=(B, K)
        bool CPU tensor, sample_idx=(B,) int64 or None)`` each."""
        if self._records is None:
            return []
        records, self._records = self._records, []
        return records

    # ------------------------------------------------------------------
    def forward(self,
                cls_score: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                tristate: Optional[torch.Tensor] = None,
                sample_idx: Optional[torch.Tensor] = None,
                **kwargs) -> torch.Tensor:
        """The inner loss on the corrected targets and weights.

        Args:
            tristate (Tensor): ``(B, K)`` labels, 1 / 0 / -1 (required).
            sample_idx (Tensor, optional): ``(B,)`` dataset indices, kept
                in the correction records.
            Others: as the inner loss.
        """
        if tristate is None:
            raise ValueError(
                f'{type(self).__name__} needs the tri-state labels: set '
                '`pass_tristate=True` (and `ignore_unknown=False`) in '
                'TriStateLinearClsHead, or use COMICHead.')
        if tristate.shape != cls_score.shape:
            raise ValueError(
                f'{type(self).__name__}: labels {tuple(tristate.shape)} for '
                f'logits {tuple(cls_score.shape)}.')
        num_classes = cls_score.size(1)
        self._ensure_state(num_classes, cls_score.device)
        probs = torch.sigmoid(cls_score.detach().float())
        if self.mean == 'batch':
            mean_probs = probs.mean(0)
        else:
            mean_probs = self.mean_probs()
        corrected = correct_labels(probs, tristate.to(probs.device),
                                   self.tau, mean_probs,
                                   self.correct_negatives)
        if weight is None:
            weight = torch.ones_like(probs)
        target, weight = apply_corrections(target.float(), weight.float(),
                                           corrected, self.corrected_weight)
        if self.training:
            self._warn_without_hook()
            self._update_state(probs, corrected)
            if self._records is not None:
                self._records.append(
                    dict(corrected=corrected.cpu(),
                         sample_idx=None if sample_idx is None else
                         torch.as_tensor(sample_idx).cpu().long()))
        if self.distribution == 'dynamic':
            kwargs['class_counts'] = self.current_class_counts()
        return self.loss(cls_score, target, weight=weight,
                         avg_factor=avg_factor,
                         reduction_override=reduction_override, **kwargs)

    def _warn_without_hook(self) -> None:
        if self._warned or self._records is not None or \
                self.distribution != 'dynamic':
            return
        self._warned = True
        print_log(
            f'{type(self).__name__}: no ReflectiveLabelCorrectionHook '
            'records the corrections, so nothing restarts the dynamic '
            'distribution each epoch: the corrections accumulate over the '
            "whole run. Add dict(type='ReflectiveLabelCorrectionHook') (and "
            "LabelStoreHook) to custom_hooks.", 'current', logging.WARNING)

    def _update_state(self, probs: torch.Tensor,
                      corrected: torch.Tensor) -> None:
        """Add the batch to the running mean and the epoch's corrections,
        summed over ranks (identical on every rank)."""
        stats = torch.cat([
            probs.double().sum(0),
            probs.new_tensor([probs.size(0)], dtype=torch.float64),
            corrected.sum(0).double()
        ])
        if dist.get_world_size() > 1:
            dist.all_reduce(stats, op='sum')
        num_classes = probs.size(1)
        self.prob_sum += stats[:num_classes].to(self.prob_sum)
        self.prob_count += int(round(float(stats[num_classes])))
        self.epoch_corrections += stats[num_classes + 1:].round().to(
            self.epoch_corrections)
