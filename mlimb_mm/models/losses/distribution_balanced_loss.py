"""Distribution-Balanced loss (Wu et al., ECCV 2020) and the rows of its
Table 1 as switches of one loss.

The equations are cited by the paper's numbers
(``shared/seeds/distribution_balanced_loss_wu2020.txt``); where the paper and
the authors' released code (``mllt/models/losses/resample_loss.py``, which
produced Table 1) differ, the project's ``METHODS.md`` §1 decides, and this
module follows it.
"""
import json
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from .multi_label_bce_loss import reduce_elementwise_loss

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
    with open(path, 'r') as f:
        data = json.load(f)
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
    switches: a re-weighting ``reweight_func``, the negative-tolerant
    regularisation ``logit_reg`` and a ``focal`` factor. ``preset`` names a
    row; switches given explicitly override the preset's.

    ============  ==================  ============  =========  =============
    preset        reweight_func       logit_reg     focal      notes
    ============  ==================  ============  =========  =============
    BCE (ERM)     None                None          None       plain BCE
    Focal         None                None          dict()
    RW            'inv_sqrt'          None          None       weight_norm=
                                                               'by_batch'
    RW-Focal      'inv_sqrt'          None          dict()     (Table 2)
    CB            'class_balanced'    None          None       loss_weight=10
    CB-Focal      'class_balanced'    None          dict()     loss_weight=10
    R-BCE         'rebalance'         None          None       Eq. (5)
    R-BCE-Focal   'rebalance'         None          dict()
    NT-BCE        None                dict()        None       Eq. (7)
    DB            'rebalance'         dict()        None       Eq. (10)
    DB-Focal      'rebalance'         dict()        dict()     **default**
    ============  ==================  ============  =========  =============

    ``dict()`` means "on, with the defaults below". The RS (class-aware
    re-sampling) rows of the paper are these losses plus the class-aware
    sampler; the loss does not sample.

    **Notation.** Logits ``z`` ``(B, K)``, targets ``y`` in [0, 1], ``n_k``
    training positives of class k, ``N`` training images.

    **Re-weighting** (``reweight_func``; the weight multiplies both the
    positive and the negative term of a label, as in Eq. (5) and the released
    code):

    - ``'rebalance'`` (R-BCE), Eq. (2)-(4):
      ``r[b,k] = (1/n_k) / sum_j y[b,j] / n_j`` (for *every* class k of the
      image, not only its positives) and
      ``w = alpha + sigmoid(beta * (r - mu))``; ``map_param`` defaults to
      ``alpha=0.1, beta=10, mu=0.2`` (COCO-MLT; VOC-MLT uses ``mu=0.3``).
      (The released code names these ``map_param=dict(gamma=alpha,
      alpha=beta, beta=mu)``; ours uses the paper's names.) Soft targets
      enter the sum linearly. The positives are those of the *target*,
      whatever the per-element ``weight`` (a PLM-masked positive still
      decides how often its image is re-sampled); unknown labels have
      target 0 and do not count.
    - ``'inv_sqrt'`` (RW): ``w_k = sqrt(N / n_k)``; ``'inv'``: ``N / n_k``.
      The paper's RW row normalises the weights to [0, 1] in a mini-batch:
      the ``RW`` preset sets ``weight_norm='by_batch'`` (divide by the
      maximum of the ``(B, K)`` weight matrix, i.e. ``sqrt(n_min / n_k)``).
    - ``'class_balanced'`` (CB, effective number, Cui et al.):
      class weight ``c_k = (1 - beta) / (1 - beta ** n_k)``; ``cb_param``
      defaults to ``beta=0.9`` (COCO-MLT in the paper's appendix; 0.99 on
      VOC-MLT) and ``mode='average_w'``, the released default: each image
      weighs all its labels by the mean ``c_k`` over its positives. Other
      modes: ``'by_class'`` (``c_k`` per class), ``'average_n'`` (``c`` of
      the mean ``n`` of the positives) and ``'average_e'`` (one over the mean
      effective number ``E = (1 - beta**n)/(1 - beta)`` of the positives, the
      appendix's wording). The CB presets set ``loss_weight=10``, as the
      appendix (mean instead of the original sum reduction).
      ``normalize=True`` scales the class weights to sum to K, as Cui et
      al.'s class-balanced loss does (then use ``loss_weight=1``).
    - ``weight_norm``: None, ``'by_instance'`` (divide each image's weights
      by their maximum) or ``'by_batch'`` (by the batch maximum), applied to
      the re-weighting only, as in the released code.

    **Negative-tolerant regularisation** (``logit_reg``), Eq. (7)-(9), with
    the class prior bias ``b_k = -log(N / n_k - 1) = log(n_k / (N - n_k))``,
    ``kappa = init_bias`` (default 0.05) and ``lambda = neg_scale``
    (default 2.0; VOC-MLT uses 5.0):

    - ``logit_reg_form='released'`` (default; what produced Table 1):
      ``z' = z + kappa * b / lambda`` for every label, then
      ``L = y * log(1 + exp(-z'))
      + (1 - y) / lambda * log(1 + exp(lambda * z'))``.
    - ``logit_reg_form='paper'``, Eq. (7) with ``nu = -kappa * b``, Eq. (9):
      ``z' = z - nu = z + kappa * b``, then the same expression.

    The two forms differ only by the shift (``kappa*b/lambda`` vs
    ``kappa*b``). For soft targets the loss is Eq. (7) with a soft ``y``
    (linear in ``y``); for hard targets it equals the released code, which
    scales the logit and weight of negatives.

    **Focal** (``focal``, defaults ``gamma=2, balance_param=2``): each term
    is multiplied by ``balance_param * (1 - p_t) ** gamma`` where ``p_t`` is
    computed, as in the released code, on the already shifted and scaled
    logits: ``1 - p_t = sigmoid(-z')`` for the positive term and
    ``sigmoid(lambda * z')`` for the negative term.

    The DB loss, Eq. (10), is then
    ``w[b,k] * [y * log(1+exp(-z')) + (1-y)/lambda * log(1+exp(lambda z'))]``
    (times the focal factor for DB-Focal).

    **Per-element weight.** The ``weight`` ``(B, K)`` passed by the head
    (0 for unknown labels, PLM masks, reliabilities, ...) multiplies the
    element-wise loss above; a zero-weighted label contributes nothing to
    the loss nor to the gradient. A ``(B,)`` weight is broadcast over
    classes.

    **Reduction.** ``'mean'`` divides the weighted sum by ``B * K``, the
    mean over all elements of the released code, *ignoring* the
    ``avg_factor`` (=B) that :class:`TriStateLinearClsHead` passes, so the
    loss has the released code's scale (a ``MultiLabelBCELoss`` under the
    same head is K times larger). Elements weighted 0 stay in the
    denominator. ``use_avg_factor=True`` divides by ``avg_factor`` instead
    (sum over classes, mean over images). ``'sum'`` and ``'none'`` as usual.

    **Degenerate cases** (no inf/NaN in loss or gradients):

    - An image with no positive target (the released code divides by zero,
      NaN) gets the weight ``empty_weight`` (default 1.0, i.e. no
      re-balancing: its labels count as in plain BCE) on all its labels,
      under ``'rebalance'`` and the per-image CB modes.
    - Counts enter the weights as ``max(n_k, 1)`` (a class with no training
      positive counts as seen once) and the prior bias as
      ``clamp(n_k, 0.5, N - 0.5)`` (half-an-image continuity correction, so
      ``b_k`` stays within ``±log(2N - 1)`` for ``n_k = 0`` or ``n_k = N``).
      Both are exact for ``1 <= n_k <= N - 1``.
    - The statistics are turned into weights in float64.

    **Class statistics** (``n_k``, ``N``) come, in order of precedence, from
    :class:`~mlimb_mm.engine.hooks.ClassStatisticsHook` (reads the training
    dataset in ``before_train`` and calls :meth:`set_class_statistics`;
    the way to use the loss, no file needed), or from ``class_counts`` +
    ``num_samples``, or from ``class_counts_file``. They are kept as
    (int64) buffers, so checkpoints carry them and a resumed run has them
    before the hook runs. A loss that needs them (any re-weighting, or a
    non-zero ``init_bias``) and has none raises at its first forward.

    Args:
        preset (str, optional): A row of the table above; the switches
            not given explicitly are the preset's. Defaults to (and None
            means) ``'DB-Focal'``.
        reweight_func (str, optional): None, ``'rebalance'``, ``'inv_sqrt'``
            (alias ``'sqrt_inv'``), ``'inv'`` or ``'class_balanced'`` (alias
            ``'CB'``). Defaults to the preset's (``'rebalance'``).
        map_param (dict): ``alpha``, ``beta``, ``mu`` of Eq. (4); missing
            keys take ``alpha=0.1, beta=10.0, mu=0.2``.
        logit_reg (dict, optional): ``init_bias`` (kappa) and ``neg_scale``
            (lambda); missing keys take ``init_bias=0.05, neg_scale=2.0``;
            None disables it.
        logit_reg_form (str): ``'released'`` (default) or ``'paper'``.
        focal (dict, optional): ``gamma`` and ``balance_param``; missing
            keys take ``gamma=2.0, balance_param=2.0``; None disables it.
        cb_param (dict): ``beta`` (in [0, 1)), ``mode`` and ``normalize``
            (class weights summed to K) of the CB weights; missing keys
            take ``beta=0.9, mode='average_w', normalize=False``.
        weight_norm (str, optional): None, ``'by_instance'`` or
            ``'by_batch'``. Defaults to the preset's (None).
        empty_weight (float): Weight of every label of an image with no
            positive target, under per-image re-weightings. Defaults to 1.0.
        class_counts (Sequence[int], optional): Positives of each class in
            the training set. Needs ``num_samples``.
        num_samples (int, optional): Number of training images N.
        class_counts_file (str, optional): JSON list of K ints (then give
            ``num_samples``), or ``{"class_counts": [...],
            "num_samples": N}``. Exclusive with ``class_counts``.
        reduction (str): ``'mean'``, ``'sum'`` or ``'none'``.
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
        dtype = cls_score.dtype
        y = target.to(dtype).clamp(0, 1)

        z = cls_score
        shift = self.compute_logit_shift()
        if shift is not None:
            z = z + shift.to(dtype)
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

        reweight = self.compute_reweight(target)
        if reweight is not None:
            loss = loss * reweight.to(dtype)

        if weight is not None:
            weight = weight.to(device=loss.device, dtype=dtype)
            if weight.dim() == 1 and weight.numel() == loss.size(0):
                weight = weight.unsqueeze(1).expand_as(loss)
        if reduction == 'mean' and not self.use_avg_factor:
            avg_factor = None
        return self.loss_weight * reduce_elementwise_loss(
            loss, weight, reduction, avg_factor)

    def extra_repr(self) -> str:
        return (f'preset={self.preset!r}, reweight_func={self.reweight_func!r}'
                f', logit_reg={self.logit_reg}, '
                f'logit_reg_form={self.logit_reg_form!r}, focal={self.focal}, '
                f'loss_weight={self.loss_weight}')
