from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS


def float32_at_least(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or float64 when it is float64: the precision the
    losses compute their logs and exponentials in, whatever the input dtype
    (float16 / bfloat16 logits of mixed-precision training)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def reduce_elementwise_loss(loss: torch.Tensor,
                            weight: Optional[torch.Tensor] = None,
                            reduction: str = 'mean',
                            avg_factor: Optional[float] = None):
    """Weight a ``(B, K)`` loss per element and reduce it.

    ``mean`` divides the weighted sum by ``avg_factor`` when given (the
    mmpretrain heads pass the batch size, i.e. a sum over classes and a mean
    over images), else by the number of elements.
    """
    if weight is not None:
        if weight.shape != loss.shape:
            raise ValueError(f'per-label weight of shape {tuple(weight.shape)}'
                             f' does not match the loss {tuple(loss.shape)}.')
        loss = loss * weight.to(loss.dtype)
    if reduction == 'none':
        return loss
    if reduction == 'sum':
        return loss.sum()
    if reduction != 'mean':
        raise ValueError(f'unknown reduction {reduction!r}')
    denominator = loss.numel() if avg_factor is None else avg_factor
    return loss.sum() / max(float(denominator), 1e-12)


@MODELS.register_module()
class MultiLabelBCELoss(nn.Module):
    """Binary cross-entropy on logits with a per-label (``(B, K)``) weight.

    mmpretrain's ``CrossEntropyLoss(use_sigmoid=True)`` accepts only one
    weight per sample; multi-label methods on messy data need one per label:
    unknown labels (-1) weigh 0, PLM masks, BalanceMix reliabilities and
    pseudo-label weights are per label. Targets may be soft (mixed or pseudo
    labels in [0, 1]). Computed in float32 (float64 for float64 logits)
    with autocast off, whatever the logits' dtype.

    Args:
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        pos_weight (list[float], optional): Per-class weight of positives,
            as in ``torch.nn.BCEWithLogitsLoss``. Defaults to None.
    """

    def __init__(self,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 pos_weight=None):
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.register_buffer(
            'pos_weight',
            None if pos_weight is None else torch.as_tensor(
                pos_weight, dtype=torch.float32),
            persistent=False)

    def forward(self,
                cls_score: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> torch.Tensor:
        """
        Args:
            cls_score (Tensor): Logits, ``(B, K)``.
            target (Tensor): Targets in [0, 1], ``(B, K)``.
            weight (Tensor, optional): Per-label weights, ``(B, K)``.
            avg_factor (float, optional): Denominator of the mean.
            reduction_override (str, optional): Overrides ``reduction``.
        """
        with torch.autocast(device_type=cls_score.device.type,
                            enabled=False):
            z = float32_at_least(cls_score)
            pos_weight = None if self.pos_weight is None else \
                self.pos_weight.to(z)
            loss = F.binary_cross_entropy_with_logits(
                z, target.to(z), pos_weight=pos_weight, reduction='none')
            loss = reduce_elementwise_loss(
                loss, weight, reduction_override or self.reduction,
                avg_factor)
        return self.loss_weight * loss
