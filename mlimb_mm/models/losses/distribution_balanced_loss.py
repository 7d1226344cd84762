"""Distribution-Balanced loss (Wu et al., ECCV 2020) and the rows of its
Table 1 as switches of one loss.

Equations are cited by the paper's numbers. What the implementation decides
where the paper and the authors' released code differ is in
``configs/db_loss/README.md``.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from ...datasets.label_utils import read_json_file
from .multi_label_bce_loss import (float32_at_least,
                                   reduce_elementwise_loss)

#: Default switch values (the authors' COCO-MLT config).
DEFAULT_MAP_PARAM = dict(alpha=0.1, beta=10.0, mu=0.2)
DEFAULT_LOGIT_REG = dict(init_bias=0.05, neg_scale=2.0)
DEFAULT_FOCAL = dict(gamma=2.0, balance_param=2.0)
DEFAULT_CB_PARAM = dict(beta=0.9, mode='average_w', normalize=False)

#: Table 1 (and Table 2) rows -> switches. Keys missing from a preset take
#: the constructor defaults; explicitly given arguments override the preset.
PRESETS = {
    'BCE': dict(reweight_func=None, logit_reg=None, focal=None),
    'Focal': dict(reweight_func=None, logit_reg=None, focal=DEFAULT_FOCAL),
    'RW': dict(
        reweight_func='inv_sqrt',
        weight_norm='by_batch',
        logit_reg=None,
        focal=None),
    'RW-Focal': dict(
        reweight_func='inv_sqrt',
        weight_norm='by_batch',
        logit_reg=None,
        focal=DEFAULT_FOCAL),
    'CB': dict(
        reweight_func='class_balanced',
        logit_reg=None,
        focal=None,
        loss_weight=10.0),
    'CB-Focal': dict(
        reweight_func='class_balanced',
        logit_reg=None,
        focal=DEFAULT_FOCAL,
        loss_weight=10.0),
    'R-BCE': dict(reweight_func='rebalance', logit_reg=None, focal=None),
    'R-BCE-Focal': dict(
        reweight_func='rebalance', logit_reg=None, focal=DEFAULT_FOCAL),
    'NT-BCE': dict(
        reweight_func=None, logit_reg=DEFAULT_LOGIT_REG, focal=None),
    'DB': dict(
        reweight_func='rebalance', logit_reg=DEFAULT_LOGIT_REG, focal=None),
    'DB-Focal': dict(
        reweight_func='rebalance',
        logit_reg=DEFAULT_LOGIT_REG,
        focal=DEFAULT_FOCAL),
}

REWEIGHT_FUNCS = (None, 'rebalance', 'inv', 'inv_sqrt', 'class_balanced')
_REWEIGHT_ALIASES = {
    'sqrt_inv': 'inv_sqrt',
    'CB': 'class_balanced',
    'cb': 'class_balanced',
}
CB_MODES = ('by_class', 'average_w', 'average_n', 'average_e')
WEIGHT_NORMS = (None, 'by_instance', 'by_batch')
LOGIT_REG_FORMS = ('released', 'paper')


class _Unset:
    """Marks an argument that was not given (so the preset decides)."""

    def __repr__(self):
        return '<preset>'


_UNSET = _Unset()


def _merge(name: str, value, defaults: dict) -> Optional[dict]:
    """``None``/``False`` -> disabled; ``True`` -> defaults; a dict is
    completed with the defaults."""
    if value is None or value is False:
        return None
    if value is True:
        return dict(defaults)
    if not isinstance(value, dict):
        raise TypeError(f'DistributionBalancedLoss: `{name}` must be a dict, '
                        f'None or True, got {value!r}.')
    unknown = set(value) - set(defaults)
    if unknown:
        raise KeyError(f'DistributionBalancedLoss: unknown keys '
                       f'{sorted(unknown)} in `{name}`; expected a subset of '
                       f'{sorted(defaults)}.')
    return {**defaults, **value}


def read_class_statistics_file(
        path: str) -> Tuple[np.ndarray, Optional[int]]:
    """Read class statistics from JSON: a list of K ints (the positives of
    each class), or ``{"class_counts": [...], "num_samples": N}`` (the
    ``num_samples`` key is optional). Returns ``(counts, num_samples or
    None)``."""
    data = read_json_file(path, 'class_counts_file')
    num_samples = None
    if isinstance(data, dict):
        if 'class_counts' not in data:
            raise KeyError(f'class_counts_file {path!r}: a JSON dict must '
                           'have the key "class_counts".')
        num_samples = data.get('num_samples')
        data = data['class_counts']
    return np.asarray(data), num_samples


@MODELS.register_module()
class DistributionBalancedLoss(nn.Module):
    r"""Distribution-Balanced loss (DB, Wu et al. 2020) and its baselines.

    One loss covers the rows of the paper's Table 1 (and Table 2) by three
    switches: a re-weighting ``reweight_func`` (R-BCE, Eq. (2)-(5); RW; CB),
    the negative-tolerant regularisation ``logit_reg`` (NT-BCE, Eq. (7)-(9))
    and a ``focal`` factor. ``preset`` names a row (``'BCE'``, ``'Focal'``,
    ``'RW'``, ``'RW-Focal'``, ``'CB'``, ``'CB-Focal'``, ``'R-BCE'``,
    ``'R-BCE-Focal'``, ``'NT-BCE'``, ``'DB'``, ``'DB-Focal'``; see
    :data:`PRESETS`); switches given explicitly override the preset's. The
    RS rows are these losses with
    :class:`~mlimb_mm.datasets.samplers.ClassAwareSampler`.

    With logits ``z`` ``(B, K)``, targets ``y`` in [0, 1], the re-weighting
    ``w`` and the class-prior shift ``z' = z + kappa * b_k / lambda``,
    ``b_k = log(n_k / (N - n_k))`` (Eq. (9) in the released code's form;
    ``logit_reg_form='paper'`` shifts by ``kappa * b_k``), DB is Eq. (10)::

        w * [y log(1 + exp(-z')) + (1 - y) / lambda log(1 + exp(lambda z'))]

    times ``balance_param * (1 - p_t) ** gamma`` for DB-Focal (``p_t`` on
    the shifted logits), times the per-label ``weight`` of the head, and
    averaged over all ``B * K`` elements (computed in float32, float64 for
    float64 logits, with autocast off). An image without positives gets
    the finite weight ``empty_weight``. The training class statistics
    (``n_k``, ``N``) are set before training by
    :class:`~mlimb_mm.engine.hooks.ClassStatisticsHook` (or given as
    arguments) and saved in checkpoints as buffers. Decisions where the
    paper is silent or differs from the released code:
    ``configs/db_loss/README.md``.

    Args:
        preset (str, optional): A row of Table 1. Defaults to (and None
            means) ``'DB-Focal'``.
        reweight_func (str, optional): None, ``'rebalance'`` (Eq. (2)-(4)),
            ``'inv_sqrt'`` (alias ``'sqrt_inv'``), ``'inv'`` or
            ``'class_balanced'`` (alias ``'CB'``). Defaults to the preset's.
        map_param (dict): ``alpha``, ``beta``, ``mu`` of Eq. (4); missing
            keys take ``alpha=0.1, beta=10.0, mu=0.2`` (COCO-MLT).
        logit_reg (dict, optional): ``init_bias`` (kappa) and ``neg_scale``
            (lambda); missing keys take ``init_bias=0.05, neg_scale=2.0``;
            None disables it.
        logit_reg_form (str): ``'released'`` (default) or ``'paper'``.
        focal (dict, optional): ``gamma`` and ``balance_param``; missing
            keys take ``gamma=2.0, balance_param=2.0``; None disables it.
        cb_param (dict): ``beta`` in [0, 1), ``mode`` (``'by_class'``,
            ``'average_w'``, ``'average_n'``, ``'average_e'``) and
            ``normalize`` of the CB weights; missing keys take
            ``beta=0.9, mode='average_w', normalize=False``.
        weight_norm (str, optional): None, ``'by_instance'`` or
            ``'by_batch'``. Defaults to the preset's.
        empty_weight (float): Weight of every label of an image with no
            positive target, under per-image re-weightings. Defaults to 1.0.
        class_counts (Sequence[int], optional): Positives of each class in
            the training set. Needs ``num_samples``.
        num_samples (int, optional): Number of training images N.
        class_counts_file (str, optional): JSON list of K ints (then give
            ``num_samples``), or ``{"class_counts": [...],
            "num_samples": N}``. Exclusive with ``class_counts``.
        reduction (str): ``'mean'`` (over ``B * K``), ``'sum'`` or
            ``'none'``. Defaults to ``'mean'``.
        use_avg_factor (bool): Divide by the caller's ``avg_factor`` in
            ``'mean'`` instead of by ``B * K``. Defaults to False.
        loss_weight (float): Defaults to 1.0 (10.0 in the CB presets).

    Examples:
        >>> loss = dict(type='DistributionBalancedLoss')  # DB-Focal
        >>> loss = dict(type='DistributionBalancedLoss', preset='DB',
        ...             map_param=dict(mu=0.3),
        ...             logit_reg=dict(neg_scale=5.0))  # VOC-MLT
        >>> custom_hooks = [dict(type='ClassStatisticsHook')]
    """

    def __init__(self,
                 preset: Optional[str] = _UNSET,
                 reweight_func: Optional[str] = _UNSET,
                 map_param: dict = _UNSET,
                 logit_reg: Optional[dict] = _UNSET,
                 logit_reg_form: str = _UNSET,
                 focal: Optional[dict] = _UNSET,
                 cb_param: dict = _UNSET,
                 weight_norm: Optional[str] = _UNSET,
                 empty_weight: float = 1.0,
                 class_counts: Optional[Sequence[int]] = None,
                 num_samples: Optional[int] = None,
                 class_counts_file: Optional[str] = None,
                 reduction: str = 'mean',
                 use_avg_factor: bool = False,
                 loss_weight: float = _UNSET):
        super().__init__()
        if preset is _UNSET or preset is None:
            preset = 'DB-Focal'
        if preset not in PRESETS:
            raise ValueError(f'DistributionBalancedLoss: unknown preset '
                             f'{preset!r}; expected one of {list(PRESETS)}.')
        self.preset = preset
        cfg = dict(
            reweight_func='rebalance',
            map_param=DEFAULT_MAP_PARAM,
            logit_reg=DEFAULT_LOGIT_REG,
            logit_reg_form='released',
            focal=DEFAULT_FOCAL,
            cb_param=DEFAULT_CB_PARAM,
            weight_norm=None,
            loss_weight=1.0)
        cfg.update(PRESETS[preset])
        given = dict(
            reweight_func=reweight_func,
            map_param=map_param,
            logit_reg=logit_reg,
            logit_reg_form=logit_reg_form,
            focal=focal,
            cb_param=cb_param,
            weight_norm=weight_norm,
            loss_weight=loss_weight)
        cfg.update({k: v for k, v in given.items() if v is not _UNSET})

        reweight_func = _REWEIGHT_ALIASES.get(cfg['reweight_func'],
                                              cfg['reweight_func'])
        if reweight_func not in REWEIGHT_FUNCS:
            raise ValueError(f'DistributionBalancedLoss: unknown '
                             f'reweight_func {reweight_func!r}; expected one '
                             f'of {REWEIGHT_FUNCS}.')
        self.reweight_func = reweight_func
        self.map_param = _merge('map_param', cfg['map_param'] or {},
                                DEFAULT_MAP_PARAM)
        self.logit_reg = _merge('logit_reg', cfg['logit_reg'],
                                DEFAULT_LOGIT_REG)
        if self.logit_reg is not None and not self.logit_reg['neg_scale'] > 0:
            raise ValueError('DistributionBalancedLoss: logit_reg.neg_scale '
                             'must be > 0.')
        if cfg['logit_reg_form'] not in LOGIT_REG_FORMS:
            raise ValueError(f'DistributionBalancedLoss: logit_reg_form must '
                             f'be one of {LOGIT_REG_FORMS}, got '
                             f'{cfg["logit_reg_form"]!r}.')
        self.logit_reg_form = cfg['logit_reg_form']
        self.focal = _merge('focal', cfg['focal'], DEFAULT_FOCAL)
        self.cb_param = _merge('cb_param', cfg['cb_param'] or {},
                               DEFAULT_CB_PARAM)
        if self.cb_param['mode'] not in CB_MODES:
            raise ValueError(f'DistributionBalancedLoss: cb_param.mode must '
                             f'be one of {CB_MODES}.')
        if not 0 <= self.cb_param['beta'] < 1:
            raise ValueError('DistributionBalancedLoss: cb_param.beta must '
                             'be in [0, 1).')
        if cfg['weight_norm'] not in WEIGHT_NORMS:
            raise ValueError(f'DistributionBalancedLoss: weight_norm must be '
                             f'one of {WEIGHT_NORMS}.')
        self.weight_norm = cfg['weight_norm']
        self.loss_weight = float(cfg['loss_weight'])
        self.empty_weight = float(empty_weight)
        if reduction not in ('mean', 'sum', 'none'):
            raise ValueError(f'unknown reduction {reduction!r}')
        self.reduction = reduction
        self.use_avg_factor = use_avg_factor

        # statistics: empty until given (buffers -> saved in checkpoints)
        self.register_buffer('class_counts', torch.zeros(0, dtype=torch.long))
        self.register_buffer('num_samples', torch.zeros((), dtype=torch.long))
        if class_counts is not None and class_counts_file is not None:
            raise ValueError('DistributionBalancedLoss: give at most one of '
                             '`class_counts` and `class_counts_file`.')
        if class_counts_file is not None:
            class_counts, file_num = read_class_statistics_file(
                class_counts_file)
            if num_samples is None:
                num_samples = file_num
        if class_counts is not None:
            if num_samples is None:
                raise ValueError(
                    'DistributionBalancedLoss: `class_counts` needs '
                    '`num_samples` (the number of training images N).')
            self.set_class_statistics(class_counts, num_samples)
        elif num_samples is not None:
            raise ValueError('DistributionBalancedLoss: `num_samples` given '
                             'without `class_counts`.')

    # ------------------------------------------------------------------
    # statistics
    # ------------------------------------------------------------------
    @property
    def needs_class_statistics(self) -> bool:
        """Whether the configured switches use ``n_k`` and ``N``."""
        return self.reweight_func is not None or (
            self.logit_reg is not None and self.logit_reg['init_bias'] != 0)

    @property
    def has_class_statistics(self) -> bool:
        return self.class_counts.numel() > 0 and int(self.num_samples) > 0

    def set_class_statistics(self, class_counts: Sequence[int],
                             num_samples: int) -> None:
        """Set the training statistics: positives per class ``n_k`` (K ints)
        and the number of training images ``N``."""
        counts = np.asarray(
            class_counts.detach().cpu() if isinstance(
                class_counts, torch.Tensor) else class_counts)
        if counts.ndim != 1 or counts.size == 0:
            raise ValueError('DistributionBalancedLoss: class_counts must be '
                             f'a non-empty 1-D sequence, got shape '
                             f'{counts.shape}.')
        if (not np.all(np.isfinite(counts.astype(np.float64)))
                or np.any(counts < 0) or np.any(counts != np.round(counts))):
            raise ValueError('DistributionBalancedLoss: class_counts must be '
                             'non-negative integers.')
        num_samples = int(num_samples)
        if num_samples < 1:
            raise ValueError('DistributionBalancedLoss: num_samples must be '
                             f'>= 1, got {num_samples}.')
        if counts.max() > num_samples:
            raise ValueError(
                'DistributionBalancedLoss: a class has more positives '
                f'({int(counts.max())}) than there are training images '
                f'({num_samples}).')
        device = self.class_counts.device
        self.class_counts = torch.as_tensor(
            counts.astype(np.int64), device=device)
        self.num_samples = torch.tensor(
            num_samples, dtype=torch.long, device=device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The counts buffer is empty until the statistics are known: take the
        # checkpoint's shape so that loading it does not fail on a size
        # mismatch.
        key = prefix + 'class_counts'
        if key in state_dict and isinstance(state_dict[key], torch.Tensor) \
                and state_dict[key].shape != self.class_counts.shape:
            self.class_counts = torch.zeros(
                state_dict[key].shape,
                dtype=torch.long,
                device=self.class_counts.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _check_statistics(self, num_classes: int) -> None:
        if not self.has_class_statistics:
            raise RuntimeError(
                f'DistributionBalancedLoss (preset {self.preset!r}, '
                f'reweight_func={self.reweight_func!r}, '
                f'logit_reg={self.logit_reg!r}) needs the training class '
                'statistics but has none: add '
                "`custom_hooks=[dict(type='ClassStatisticsHook')]` to the "
                'config (it reads them from the training dataset before '
                'training), or give the loss `class_counts` and '
                '`num_samples` (or `class_counts_file`).')
        if self.class_counts.numel() != num_classes:
            raise ValueError(
                f'DistributionBalancedLoss: {self.class_counts.numel()} class '
                f'counts but the logits have {num_classes} classes.')

    def _counts(self) -> Tuple[torch.Tensor, float]:
        """``(n_k as float64 (K,), N)``."""
        return self.class_counts.to(torch.float64), float(self.num_samples)

    # ------------------------------------------------------------------
    # Eq. (2)-(4) and the baselines' weights
    # ------------------------------------------------------------------
    def _per_image(self, value: torch.Tensor,
                   has_pos: torch.Tensor) -> torch.Tensor:
        """Replace the rows of images without positives by
        ``empty_weight``."""
        return torch.where(has_pos, value,
                           torch.full_like(value, self.empty_weight))

    def compute_reweight(self, target: torch.Tensor) -> Optional[torch.Tensor]:
        """The ``(B, K)`` float64 re-weighting of ``reweight_func`` for the
        targets ``(B, K)`` in [0, 1], or None."""
        if self.reweight_func is None:
            return None
        t = target.detach().to(torch.float64).clamp(0, 1)
        counts, num = self._counts()
        n = counts.clamp(min=1)
        bsz, num_classes = t.shape
        pos_sum = t.sum(1, keepdim=True)  # (B, 1)
        has_pos = pos_sum > 0
        if self.reweight_func == 'rebalance':
            inv = 1.0 / n  # P^C up to 1/C, Eq. (2)
            repeat = t @ inv.unsqueeze(1)  # P^I up to 1/C, (B, 1)
            r = inv.unsqueeze(0) / torch.where(has_pos, repeat,
                                               torch.ones_like(repeat))
            mp = self.map_param
            w = mp['alpha'] + torch.sigmoid(mp['beta'] * (r - mp['mu']))
            w = self._per_image(w, has_pos)  # Eq. (3)-(4)
        elif self.reweight_func in ('inv', 'inv_sqrt'):
            w = num / n
            if self.reweight_func == 'inv_sqrt':
                w = w.sqrt()
            w = w.unsqueeze(0).expand(bsz, num_classes)
        else:  # class_balanced
            beta, mode = self.cb_param['beta'], self.cb_param['mode']
            class_w = (1 - beta) / (1 - beta**n)  # 1 / E_n
            if self.cb_param['normalize']:
                # Cui et al.: the class weights sum to the number of classes
                class_w = class_w * num_classes / class_w.sum()
            safe = torch.where(has_pos, pos_sum, torch.ones_like(pos_sum))
            if mode == 'by_class':
                w = class_w.unsqueeze(0).expand(bsz, num_classes)
            elif mode == 'average_w':
                w = self._per_image(t @ class_w.unsqueeze(1) / safe, has_pos)
            elif mode == 'average_n':
                avg_n = (t @ n.unsqueeze(1) / safe).clamp(min=1)
                w = self._per_image((1 - beta) / (1 - beta**avg_n), has_pos)
            else:  # average_e
                eff = (1 - beta**n) / (1 - beta)
                avg_e = t @ eff.unsqueeze(1) / safe
                w = self._per_image(1.0 / avg_e.clamp(min=1), has_pos)
            w = w.expand(bsz, num_classes)
        if self.weight_norm == 'by_instance':
            w = w / w.max(dim=1, keepdim=True).values
        elif self.weight_norm == 'by_batch':
            w = w / w.max()
        return w

    def compute_logit_shift(self) -> Optional[torch.Tensor]:
        """The ``(K,)`` float64 shift added to the logits: ``kappa*b/lambda``
        (released) or ``-nu = kappa*b`` (paper, Eq. (9)); None without
        ``logit_reg`` or with ``init_bias=0``."""
        if self.logit_reg is None or self.logit_reg['init_bias'] == 0:
            return None
        counts, num = self._counts()
        n = counts.clamp(min=0.5, max=num - 0.5)
        prior_bias = torch.log(n / (num - n))  # -log(N/n_k - 1), Eq. (9)
        shift = self.logit_reg['init_bias'] * prior_bias
        if self.logit_reg_form == 'released':
            shift = shift / self.logit_reg['neg_scale']
        return shift

    # ------------------------------------------------------------------
    def forward(self,
                cls_score: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> torch.Tensor:
        """
        Args:
            cls_score (Tensor): Logits, ``(B, K)``.
            target (Tensor): Targets in [0, 1], ``(B, K)``.
            weight (Tensor, optional): Per-label weights ``(B, K)`` (or
                per-image ``(B,)``), multiplied into the element-wise loss.
            avg_factor (float, optional): Used by ``'mean'`` only with
                ``use_avg_factor=True``; otherwise the mean is over B*K.
            reduction_override (str, optional): Overrides ``reduction``.
        """
        if cls_score.dim() != 2 or target.shape != cls_score.shape:
            raise ValueError(
                'DistributionBalancedLoss expects (B, K) logits and targets, '
                f'got {tuple(cls_score.shape)} and {tuple(target.shape)}.')
        reduction = reduction_override or self.reduction
        if self.needs_class_statistics:
            self._check_statistics(cls_score.size(1))
        # float32 (float64 for float64 logits) with autocast off: float16
        # logits of mixed precision would round the shift, overflow large
        # weights (N / n_k > 65504) and lose the softplus' precision
        with torch.autocast(device_type=cls_score.device.type,
                            enabled=False):
            z = float32_at_least(cls_score)
            loss = self._elementwise(z, target)
            if weight is not None:
                weight = weight.to(device=loss.device, dtype=z.dtype)
                if weight.dim() == 1 and weight.numel() == loss.size(0):
                    weight = weight.unsqueeze(1).expand_as(loss)
            if reduction == 'mean' and not self.use_avg_factor:
                avg_factor = None
            loss = reduce_elementwise_loss(loss, weight, reduction,
                                           avg_factor)
        return self.loss_weight * loss

    def _elementwise(self, z: torch.Tensor,
                     target: torch.Tensor) -> torch.Tensor:
        """The ``(B, K)`` loss of Eq. (10) (and the other rows) before the
        per-label ``weight``, in ``z``'s dtype."""
        dtype = z.dtype
        y = target.to(z).clamp(0, 1)
        shift = self.compute_logit_shift()
        if shift is not None:
            z = z + shift.to(z)
        scale = self.logit_reg['neg_scale'] if self.logit_reg else 1.0
        z_neg = z * scale if scale != 1.0 else z
        # -log sigmoid(z') and -log(1 - sigmoid(lambda z')) / lambda, Eq. (7)
        pos_term = F.softplus(-z)
        neg_term = F.softplus(z_neg) / scale
        if self.focal is not None:
            gamma = self.focal['gamma']
            # (1 - p_t)^gamma on the shifted and scaled logits
            pos_term = pos_term * torch.exp(gamma * F.logsigmoid(-z))
            neg_term = neg_term * torch.exp(gamma * F.logsigmoid(z_neg))
        loss = y * pos_term + (1 - y) * neg_term
        if self.focal is not None:
            loss = self.focal['balance_param'] * loss
        reweight = self.compute_reweight(target.to(z.device))
        if reweight is not None:
            loss = loss * reweight.to(dtype)
        return loss

    def extra_repr(self) -> str:
        return (f'preset={self.preset!r}, reweight_func={self.reweight_func!r}'
                f', logit_reg={self.logit_reg}, '
                f'logit_reg_form={self.logit_reg_form!r}, focal={self.focal}, '
                f'loss_weight={self.loss_weight}')
