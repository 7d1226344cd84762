from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from .multi_label_bce_loss import reduce_elementwise_loss


@MODELS.register_module()
class MultiLabelAsymmetricLoss(nn.Module):
    """Asymmetric loss (ASL, Ridnik et al., ICCV 2021) with a per-label
    weight. mmpretrain's ``AsymmetricLoss`` takes one weight per image; the
    partial-label and re-weighting methods here need one per label (unknown
    labels, PLM masks, DB weights). With ``p = sigmoid(z)`` and the shifted
    probability ``p_m = max(p - clip, 0)``::

        L = -[ y (1 - p)^gamma_pos log(p)
               + (1 - y) p_m^gamma_neg log(1 - p_m) ]

    (soft targets mix the two terms linearly; for 0/1 targets this is
    mmpretrain's and the authors' loss). ``log(p)`` is ``logsigmoid(z)``
    and ``log(1 - p_m)`` is clamped at ``log(eps)``: float32 and finite
    whatever the input dtype. Over AN (unknown = negative), as the ASL
    baseline of Zhang et al., use it with
    ``TriStateLinearClsHead(ignore_unknown=False)``.

    Args:
        gamma_pos (float): Focusing of positives. Defaults to 0.
        gamma_neg (float): Focusing of negatives. Defaults to 4.
        clip (float): Probability margin of negatives. Defaults to 0.05.
        eps (float): Smallest argument of the negatives' log. Defaults to
            1e-8.
        reduction (str): ``'mean'`` (sum over classes divided by
            ``avg_factor``, the batch size from the head), ``'sum'`` or
            ``'none'``. Defaults to ``'mean'``.
        loss_weight (float): Defaults to 1.0.
    """

    def __init__(self,
                 gamma_pos: float = 0.,
                 gamma_neg: float = 4.,
                 clip: float = 0.05,
                 eps: float = 1e-8,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0):
        super().__init__()
        if not 0. <= float(clip) < 1.:
            raise ValueError('MultiLabelAsymmetricLoss: clip must be in '
                             f'[0, 1), got {clip}.')
        self.gamma_pos = float(gamma_pos)
        self.gamma_neg = float(gamma_neg)
        self.clip = float(clip)
        self.eps = float(eps)
        self.reduction = reduction
        self.loss_weight = float(loss_weight)

    def forward(self,
                cls_score: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> torch.Tensor:
        with torch.autocast(device_type=cls_score.device.type,
                            enabled=False):
            z = cls_score.float()
            y = target.to(z.device, torch.float32).clamp(0, 1)
            p = torch.sigmoid(z)
            pos = F.logsigmoid(z)
            if self.gamma_pos:
                pos = pos * (1. - p).pow(self.gamma_pos)
            p_m = (p - self.clip).clamp(min=0) if self.clip else p
            neg = torch.log((1. - p_m).clamp(min=self.eps))
            if self.gamma_neg:
                neg = neg * p_m.pow(self.gamma_neg)
            loss = -(y * pos + (1. - y) * neg)
            if weight is not None:
                weight = weight.to(z.device, torch.float32)
                if weight.dim() == 1:
                    weight = weight.unsqueeze(1).expand_as(loss)
            reduction = reduction_override or self.reduction
            if avg_factor is None and reduction == 'mean':
                avg_factor = z.size(0)
            loss = reduce_elementwise_loss(loss, weight, reduction,
                                           avg_factor)
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return (f'gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, '
                f'clip={self.clip}')
