from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from .multi_label_bce_loss import reduce_elementwise_loss


@MODELS.register_module()
class AssumeNegativeLoss(nn.Module):
    """Binary cross-entropy that assumes unknown labels are negative: the
    partial-label baselines AN, WAN and AN-LS (Cole et al., "Multi-Label
    Learning from Single Positive Labels", CVPR 2021, §4; the baselines of
    Zhang et al. §V-B).

    - **AN**: every unknown label (tri-state -1) is a negative of weight 1
      (the same as ``MultiLabelBCELoss`` with
      ``TriStateLinearClsHead(ignore_unknown=False)``).
    - **WAN** (``unknown_weight='wan'``): the assumed negatives weigh
      ``1 / (K - 1)``; observed labels weigh 1. Without observed negatives
      (PPL, SPL) this is Cole et al.'s WAN exactly.
    - **AN-LS** (``label_smoothing=eps``): Cole et al.'s smoothing, the
      target of a positive is ``1 - eps`` and of a (known or assumed)
      negative ``eps``.

    Needs ``TriStateLinearClsHead(pass_tristate=True,
    ignore_unknown=False)``; a per-label ``weight`` (PLM masks, ...)
    multiplies in. Float32 whatever the input dtype.

    Args:
        unknown_weight (float | str): Weight of an assumed negative, or
            ``'wan'`` for ``1 / (K - 1)``. Defaults to 1 (AN).
        label_smoothing (float): ``eps`` in [0, 0.5). Defaults to 0.
        reduction (str): ``'mean'`` (sum over classes divided by
            ``avg_factor``, the batch size from the head), ``'sum'`` or
            ``'none'``. Defaults to ``'mean'``.
        loss_weight (float): Defaults to 1.0.
    """

    def __init__(self,
                 unknown_weight: Union[float, str] = 1.,
                 label_smoothing: float = 0.,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0):
        super().__init__()
        if isinstance(unknown_weight, str):
            if unknown_weight != 'wan':
                raise ValueError("AssumeNegativeLoss: unknown_weight must be "
                                 f"a number or 'wan', got {unknown_weight!r}.")
        elif not float(unknown_weight) >= 0:
            raise ValueError('AssumeNegativeLoss: unknown_weight must be >= '
                             f'0, got {unknown_weight}.')
        if not 0. <= float(label_smoothing) < 0.5:
            raise ValueError('AssumeNegativeLoss: label_smoothing must be in '
                             f'[0, 0.5), got {label_smoothing}.')
        self.unknown_weight = unknown_weight
        self.label_smoothing = float(label_smoothing)
        self.reduction = reduction
        self.loss_weight = float(loss_weight)

    def forward(self,
                cls_score: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                tristate: Optional[torch.Tensor] = None,
                **kwargs) -> torch.Tensor:
        """``target`` is the multi-hot of the observed positives; the
        unknown labels are read from ``tristate`` (``(B, K)``, -1)."""
        if tristate is None:
            raise ValueError(
                'AssumeNegativeLoss needs the tri-state labels: use '
                'TriStateLinearClsHead(pass_tristate=True, '
                'ignore_unknown=False).')
        with torch.autocast(device_type=cls_score.device.type,
                            enabled=False):
            z = cls_score.float()
            tristate = tristate.to(z.device)
            unknown = tristate == -1
            # assumed negative: target 0 on every unknown label
            y = torch.where(unknown, torch.zeros_like(z),
                            target.to(z.device, torch.float32).clamp(0, 1))
            eps = self.label_smoothing
            if eps:
                y = y * (1. - 2. * eps) + eps
            loss = F.binary_cross_entropy_with_logits(z, y, reduction='none')
            label_weight = torch.ones_like(z)
            if self.unknown_weight == 'wan':
                unknown_w = 1. / max(1, z.size(1) - 1)
            else:
                unknown_w = float(self.unknown_weight)
            if unknown_w != 1.:
                label_weight = torch.where(
                    unknown, torch.full_like(z, unknown_w), label_weight)
            if weight is not None:
                label_weight = label_weight * weight.to(z.device,
                                                        torch.float32)
            reduction = reduction_override or self.reduction
            if avg_factor is None and reduction == 'mean':
                avg_factor = z.size(0)
            loss = reduce_elementwise_loss(loss, label_weight, reduction,
                                           avg_factor)
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return (f'unknown_weight={self.unknown_weight!r}, '
                f'label_smoothing={self.label_smoothing}')
