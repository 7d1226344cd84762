"""Mean average precision over all classes and over the many / medium / few
shot groups of a long-tailed multi-label dataset, ignoring unknown labels."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmpretrain.registry import METRICS

from ...datasets.label_utils import GROUP_NAMES, long_tail_groups
from .class_counts import (ClassCountsMixin, _to_tensor, class_name,
                           sample_to_result, stack_results)

__all__ = [
    'GROUP_NAMES', 'LongTailMultiLabelMetric', 'average_precision',
    'long_tail_groups'
]


def average_precision(scores: Union[torch.Tensor, np.ndarray],
                      tristate: Union[torch.Tensor, np.ndarray],
                      max_chunk_elements: int = 1 << 22) -> np.ndarray:
    r"""Per-class non-interpolated average precision, ignoring unknowns.

    For each class k, the samples whose label is unknown (``tristate == -1``)
    are left out; on the rest, AP is the step-function integral of the
    precision-recall curve taken at every DISTINCT score threshold,

    .. math::
        \text{AP} = \sum_n (R_n - R_{n-1}) P_n,

    exactly the definition of ``sklearn.metrics.average_precision_score``
    (tied scores enter the curve together, as one threshold). Values are in
    [0, 1] (not percent). Vectorised over classes, in chunks of at most
    ``max_chunk_elements`` scores to bound memory.

    Args:
        scores: ``(N, K)`` (or ``(N,)``) scores; higher means more positive.
        tristate: labels of the same shape, 1 positive, 0 negative,
            -1 unknown (any other value is treated as unknown).

    Returns:
        np.ndarray: ``(K,)`` float64 APs (a float for 1-D inputs), NaN for a
        class with no positive among its known labels.
    """
    scores = _to_tensor(scores)
    tristate = _to_tensor(tristate)
    if scores.shape != tristate.shape:
        raise ValueError(f'scores {tuple(scores.shape)} and labels '
                         f'{tuple(tristate.shape)} differ in shape.')
    squeeze = scores.ndim == 1
    if squeeze:
        scores, tristate = scores[:, None], tristate[:, None]
    if scores.ndim != 2:
        raise ValueError('scores must have shape (N, K), got '
                         f'{tuple(scores.shape)}.')
    if not scores.is_floating_point():
        scores = scores.double()
    if torch.isnan(scores).any():
        raise ValueError('average_precision: the scores contain NaN.')
    num, num_classes = scores.shape
    ap = np.full(num_classes, np.nan)
    if num == 0 or num_classes == 0:
        return float(ap[0]) if squeeze else ap

    step = max(1, max_chunk_elements // num)
    for start in range(0, num_classes, step):
        # (k, N) contiguous rows: sort and scan along the last dimension.
        s = scores[:, start:start + step].t().contiguous()
        t = tristate[:, start:start + step].t().contiguous()
        s_sorted, order = torch.sort(s, dim=1, descending=True)
        t_sorted = torch.gather(t, 1, order)
        del s, t, order
        # Tie groups: the curve is evaluated only at distinct thresholds,
        # i.e. after a whole group of equal scores. ``gid`` numbers the
        # groups of each row 0, 1, ... in descending score order.
        is_start = torch.ones(s_sorted.shape, dtype=torch.bool)
        torch.ne(s_sorted[:, 1:], s_sorted[:, :-1], out=is_start[:, 1:])
        del s_sorted
        gid = is_start.cumsum(1)
        gid -= 1
        del is_start
        # Positives and known labels (1 or 0) per group; unknown labels
        # count in neither, which is leaving them out of the class.
        pos_g = torch.zeros(gid.shape, dtype=torch.int32).scatter_add_(
            1, gid, (t_sorted == 1).int())
        known_g = torch.zeros(gid.shape, dtype=torch.int32).scatter_add_(
            1, gid, ((t_sorted == 1) | (t_sorted == 0)).int())
        del gid, t_sorted
        # At the end of group g: TP_g = cumsum(pos), TP_g + FP_g =
        # cumsum(known); P_g = TP_g / (TP_g + FP_g). The recall step of
        # group g is pos_g / n_pos, so AP = sum_g pos_g P_g / n_pos. Groups
        # of unknowns only (or unused trailing slots) have pos_g = 0.
        tps = pos_g.cumsum(1, dtype=torch.int32)
        known = known_g.cumsum(1, dtype=torch.int32)
        del known_g
        n_pos = tps[:, -1].double()
        precision = tps.double() / known.clamp_min(1).double()
        summed = (pos_g.double() * precision).sum(1)
        chunk_ap = torch.where(n_pos > 0, summed / n_pos.clamp_min(1),
                               torch.full_like(summed, float('nan')))
        ap[start:start + step] = chunk_ap.numpy()
    return float(ap[0]) if squeeze else ap


@METRICS.register_module()
class LongTailMultiLabelMetric(ClassCountsMixin, BaseMetric):
    """mAP over all classes and over the many / medium / few-shot groups.

    Per-class AP is :func:`average_precision`: sklearn's non-interpolated AP
    (distinct-threshold step function, exact with tied scores), computed per
    class on the samples whose label for that class is known (tri-state 1
    or 0; -1 is ignored). Results are in percent:

    - ``mAP``: mean AP over the classes with at least one known positive in
      the evaluation set. A class with no such positive has no AP; it is left
      out of ``mAP`` and of its group, with a warning naming it.
    - ``mAP_many``, ``mAP_medium``, ``mAP_few``: the same mean over each
      group from :func:`long_tail_groups` on the TRAINING class counts.
      Reported only when class counts are given (one of ``class_counts``,
      ``class_counts_file``, ``train_dataset``); without them only ``mAP``
      is reported. A group with no evaluable class gives no key (never NaN),
      with a warning once. The group sizes are logged once.
    - ``AP_classwise`` (when ``classwise=True``): the list of the K APs in
      percent, NaN for the classes without a known positive.

    Labels of each sample are read by :func:`~.class_counts.sample_to_result`:
    ``gt_tristate`` when present, else ``gt_score``/``gt_label`` with
    mmpretrain VOC's ``gt_label_difficult`` labels unknown (as
    ``VOCMultiLabelMetric``'s default).

    Args:
        group_thresholds (tuple[int, int]): ``(low, high)``: many shot is
            ``count > high``, medium ``low <= count <= high``, few
            ``count < low``. Defaults to ``(20, 100)``.
        class_counts (Sequence[int], optional): training positive counts of
            the K classes.
        class_counts_file (str, optional): a JSON file with the list of K
            counts, or ``{"class_counts": [...]}``. Read at construction.
        train_dataset (dict | Dataset, optional): the training dataset config,
            built with ``DATASETS.build`` at the first evaluation; its
            ``get_class_counts()`` (or, lacking it, ``get_cat_ids``) gives
            the counts. At most one of the three count sources may be given.
        classwise (bool): also report ``AP_classwise``. Defaults to False.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): prefix of the result keys. Defaults to
            ``'multi-label'`` (so ``'multi-label/mAP'``, like mmpretrain's
            ``AveragePrecision``; set another prefix to use both).
    """
    default_prefix: Optional[str] = 'multi-label'

    def __init__(self,
                 group_thresholds: Tuple[int, int] = (20, 100),
                 class_counts: Optional[Sequence[int]] = None,
                 class_counts_file: Optional[str] = None,
                 train_dataset: Optional[dict] = None,
                 classwise: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        group_thresholds = tuple(group_thresholds)
        if len(group_thresholds) != 2 or \
                group_thresholds[0] > group_thresholds[1]:
            raise ValueError('group_thresholds must be (low, high) with '
                             f'low <= high, got {group_thresholds}.')
        self.group_thresholds = group_thresholds
        self.classwise = classwise
        self._init_class_counts(class_counts, class_counts_file,
                                train_dataset)
        self._warned = set()
        self._logged_groups = False

    def _warn_once(self, key, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            MMLogger.get_current_instance().warning(msg)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store each sample's ``pred_score`` and tri-state labels."""
        for data_sample in data_samples:
            self.results.append(sample_to_result(data_sample))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        pred, tristate = stack_results(results)
        num_classes = pred.shape[1]
        ap = average_precision(pred, tristate)
        valid = ~np.isnan(ap)
        metrics = {}

        missing = np.flatnonzero(~valid)
        if len(missing):
            names = ', '.join(
                class_name(self.dataset_meta, k) for k in missing)
            self._warn_once(
                ('missing', tuple(missing.tolist())),
                f'{type(self).__name__}: {len(missing)} class(es) have no '
                'positive (known) label in the evaluation set and are left '
                f'out of mAP and of their group: {names}.')
        if valid.any():
            metrics['mAP'] = float(ap[valid].mean() * 100)
        else:
            self._warn_once('no_class', f'{type(self).__name__}: no class '
                            'has a positive label in the evaluation set; '
                            'mAP is not reported.')

        counts = self.get_train_class_counts(num_classes)
        if counts is not None:
            groups = long_tail_groups(counts, self.group_thresholds)
            if not self._logged_groups:
                self._logged_groups = True
                low, high = self.group_thresholds
                MMLogger.get_current_instance().info(
                    f'{type(self).__name__}: class groups by training count '
                    f'(many > {high} >= medium >= {low} > few): ' + ', '.join(
                        f'{name}={len(groups[name])}'
                        for name in GROUP_NAMES) + ' classes.')
            for name in GROUP_NAMES:
                idx = groups[name]
                idx = idx[valid[idx]]
                if len(idx) == 0:
                    self._warn_once(
                        ('empty', name),
                        f'{type(self).__name__}: the {name}-shot group has '
                        f'no class with a positive label in the evaluation '
                        f'set (thresholds {self.group_thresholds}); '
                        f'mAP_{name} is not reported.')
                    continue
                metrics[f'mAP_{name}'] = float(ap[idx].mean() * 100)

        if self.classwise:
            metrics['AP_classwise'] = (ap * 100).tolist()
        return metrics
