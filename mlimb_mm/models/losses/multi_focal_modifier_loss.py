from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmpretrain.registry import MODELS

from ..utils.comic import head_tail_factor, multi_focal_modifier
from .multi_label_bce_loss import reduce_elementwise_loss


@MODELS.register_module()
class MultiFocalModifierLoss(nn.Module):
    """COMIC's Multi-Focal Modifier loss (Zhang et al., ICCV 2023,
    Eq. (4)-(6)): a focal loss with a positive-negative (P-N) and a
    head-tail (H-T) focal factor.

    Per label, with ``p = sigmoid(z)``, ``p_m = max(p - clip, 0)`` and the
    head-tail factor ``h_k = (1 - log(n_k / n_max)) ** ht_power``::

        L = -h_k [t (1-p)^(gamma_pos + w_pos h_k) log p
                  + (1-t) p_m^(gamma_neg + w_neg h_k) log(1 - p_m)]

    The defaults are the authors' (gamma_pos 0, gamma_neg 3, clip 0.05, a
    class factor that multiplies the loss and adds to the negative
    exponent). ``pn_factor=False`` zeroes ``gamma_pos`` / ``gamma_neg``,
    ``ht_factor=False`` drops ``h`` (Table 4); both off with ``clip=0`` is
    BCE. ``n_k`` comes from the training set through
    :class:`~mlimb_mm.engine.hooks.ClassStatisticsHook` (or
    ``class_counts``) and is kept as a buffer (checkpointed);
    ``ReflectiveLabelCorrectionLoss`` passes corrected counts per call
    (``class_counts=``). Computes in float32; reduced like the other
    losses: the weighted sum over labels divided by ``avg_factor`` (the
    batch size the heads pass), else the mean. Notes:
    ``configs/comic/README.md``.

    Args:
        gamma_pos (float): P-N exponent of positives. Defaults to 0.
        gamma_neg (float): P-N exponent of negatives. Defaults to 3.
        clip (float): Probability shift of the negatives. Defaults to 0.05.
        pn_factor (bool): Use ``gamma_pos`` / ``gamma_neg``. Defaults to True.
        ht_factor (bool): Use the head-tail factor. Defaults to True.
        ht_power (float): Power of the head-tail factor. Defaults to 1/3.
        w_pos (float): ``w+`` of Eq. (5). Defaults to 0 (the code).
        w_neg (float): ``w-`` of Eq. (5). Defaults to 1 (the code).
        ht_weighs_loss (bool): Multiply the loss by ``h_k``. Defaults to True.
        detach_focal (bool): No gradient through the focal factors (the
            code). Defaults to False (Eq. (6) as written).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight (float): Weight of the loss. Defaults to 1.
        class_counts (list[int], optional): ``n_k`` given in the config.
    """

    def __init__(self,
                 gamma_pos: float = 0.,
                 gamma_neg: float = 3.,
                 clip: float = 0.05,
                 pn_factor: bool = True,
                 ht_factor: bool = True,
                 ht_power: float = 1. / 3,
                 w_pos: float = 0.,
                 w_neg: float = 1.,
                 ht_weighs_loss: bool = True,
                 detach_focal: bool = False,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 class_counts: Optional[Sequence[int]] = None):
        super().__init__()
        name = type(self).__name__
        for key, value in dict(gamma_pos=gamma_pos, gamma_neg=gamma_neg,
                               w_pos=w_pos, w_neg=w_neg).items():
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f'{name}: {key} must be finite and >= 0, '
                                 f'got {value}.')
        if not 0 <= clip < 1:
            raise ValueError(f'{name}: clip must be in [0, 1), got {clip}.')
        if not ht_power > 0:
            raise ValueError(f'{name}: ht_power must be > 0, got {ht_power}.')
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f'{name}: unknown reduction {reduction!r}.')
        self.gamma_pos = float(gamma_pos) if pn_factor else 0.
        self.gamma_neg = float(gamma_neg) if pn_factor else 0.
        self.clip = float(clip)
        self.pn_factor = bool(pn_factor)
        self.ht_factor = bool(ht_factor)
        self.ht_power = float(ht_power)
        self.w_pos, self.w_neg = float(w_pos), float(w_neg)
        self.ht_weighs_loss = bool(ht_weighs_loss)
        self.detach_focal = bool(detach_focal)
        self.reduction = reduction
        self.loss_weight = float(loss_weight)
        # empty until known (buffers: saved in checkpoints)
        self.register_buffer('class_counts', torch.zeros(0, dtype=torch.long))
        self.register_buffer('num_samples', torch.zeros((), dtype=torch.long))
        if class_counts is not None:
            counts = np.asarray(class_counts)
            self.set_class_statistics(counts, max(int(counts.max()), 1))

    @property
    def needs_class_statistics(self) -> bool:
        return self.ht_factor

    @property
    def has_class_statistics(self) -> bool:
        return self.class_counts.numel() > 0

    def set_class_statistics(self, class_counts, num_samples: int) -> None:
        """Positives per class ``n_k`` (K ints) and the number of training
        images (the ``ClassStatisticsHook`` protocol)."""
        counts = np.asarray(
            class_counts.detach().cpu() if isinstance(
                class_counts, torch.Tensor) else class_counts)
        if counts.ndim != 1 or counts.size == 0 or np.any(counts < 0) or \
                not np.all(np.isfinite(counts.astype(np.float64))):
            raise ValueError(f'{type(self).__name__}: class_counts must be a '
                             'non-empty 1-D sequence of counts >= 0.')
        device = self.class_counts.device
        self.class_counts = torch.as_tensor(
            counts.astype(np.int64), device=device)
        self.num_samples = torch.tensor(
            int(num_samples), dtype=torch.long, device=device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # take the checkpoint's shape for the (empty until known) counts
        key = prefix + 'class_counts'
        if key in state_dict and isinstance(state_dict[key], torch.Tensor) \
                and state_dict[key].shape != self.class_counts.shape:
            self.class_counts = torch.zeros(
                state_dict[key].shape, dtype=torch.long,
                device=self.class_counts.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def class_factor(self, num_classes: int,
                     class_counts: Optional[torch.Tensor] = None
                     ) -> Optional[torch.Tensor]:
        """``h_k`` (float32 ``(K,)``) from ``class_counts`` (or the held
        statistics), None when ``ht_factor`` is off."""
        if not self.ht_factor:
            return None
        counts = self.class_counts if class_counts is None else class_counts
        if counts is None or counts.numel() == 0:
            raise RuntimeError(
                f'{type(self).__name__}(ht_factor=True) needs the training '
                'class counts: add `custom_hooks=[dict(type='
                "'ClassStatisticsHook')]` to the config, or give the loss "
                '`class_counts`.')
        if counts.numel() != num_classes:
            raise ValueError(
                f'{type(self).__name__}: {counts.numel()} class counts but '
                f'the logits have {num_classes} classes.')
        return head_tail_factor(counts, self.ht_power).float()

    def forward(self,
                cls_score: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                class_counts: Optional[torch.Tensor] = None,
                is_prob: bool = False) -> torch.Tensor:
        """
        Args:
            cls_score (Tensor): Logits ``(B, K)`` (probabilities when
                ``is_prob``).
            target (Tensor): Targets in [0, 1], ``(B, K)``.
            weight (Tensor, optional): Per-label weights ``(B, K)``.
            avg_factor (float, optional): Denominator of the mean.
            reduction_override (str, optional): Overrides ``reduction``.
            class_counts (Tensor, optional): ``n_k`` for this call instead
                of the held statistics (the dynamic distribution).
            is_prob (bool): ``cls_score`` holds probabilities.
        """
        if cls_score.dim() != 2 or target.shape != cls_score.shape:
            raise ValueError(
                f'{type(self).__name__}: scores {tuple(cls_score.shape)} and '
                f'targets {tuple(target.shape)} must both be (B, K).')
        factor = self.class_factor(cls_score.size(1), class_counts)
        if factor is not None:
            factor = factor.to(cls_score.device)
        loss = multi_focal_modifier(
            cls_score,
            target,
            class_factor=factor,
            gamma_pos=self.gamma_pos,
            gamma_neg=self.gamma_neg,
            w_pos=self.w_pos,
            w_neg=self.w_neg,
            clip=self.clip,
            weigh_loss=self.ht_weighs_loss,
            detach_focal=self.detach_focal,
            is_prob=is_prob)
        if weight is not None:
            weight = weight.float()
        return self.loss_weight * reduce_elementwise_loss(
            loss, weight, reduction_override or self.reduction, avg_factor)
