"""Per-class precision / recall / F1, their mean over the least frequent
training classes, and exact-match accuracy (the metrics of the PLM paper,
Duarte et al., "PLM: Partial Label Masking for Imbalanced Multi-label
Classification", CVPR-W 2021), ignoring unknown labels."""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmpretrain.registry import METRICS

from .class_counts import (ClassCountsMixin, _to_tensor, class_name,
                           sample_to_result, stack_results)


def precision_recall_f1(scores: Union[torch.Tensor, np.ndarray],
                        tristate: Union[torch.Tensor, np.ndarray],
                        thr: float = 0.5) -> Dict[str, np.ndarray]:
    """Per-class precision, recall and F1 at a threshold, ignoring unknowns.

    A label is predicted positive when ``score >= thr`` (as mmpretrain's
    ``MultiLabelMetric``). For class k, only the samples whose label is
    known (tri-state 1 or 0) count: ``tp``, ``fp``, ``fn`` over them, then
    ``precision = tp / (tp + fp)`` (0 when nothing is predicted positive),
    ``recall = tp / (tp + fn)`` (0 when the class has no positive) and
    ``f1 = 2 P R / (P + R)`` (0 when both are 0): the values of
    ``sklearn.metrics.precision_recall_fscore_support(average=None,
    zero_division=0)`` on the known labels. Values are in [0, 1].

    Returns:
        dict: ``precision``, ``recall``, ``f1`` (float64) and ``support``
        (int64, the number of known positives) arrays of shape ``(K,)``.
    """
    scores = _to_tensor(scores)
    tristate = _to_tensor(tristate)
    if scores.shape != tristate.shape or scores.ndim != 2:
        raise ValueError('scores and labels must both have shape (N, K), got '
                         f'{tuple(scores.shape)} and {tuple(tristate.shape)}.')
    pred_pos = scores >= thr
    is_pos = tristate == 1
    is_neg = tristate == 0
    tp = (pred_pos & is_pos).sum(0).double().numpy()
    fp = (pred_pos & is_neg).sum(0).double().numpy()
    support = is_pos.sum(0).numpy().astype(np.int64)
    with np.errstate(divide='ignore', invalid='ignore'):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0,
                      2 * precision * recall / (precision + recall), 0.0)
    return dict(
        precision=precision, recall=recall, f1=f1, support=support)


def exact_match(scores: Union[torch.Tensor, np.ndarray],
                tristate: Union[torch.Tensor, np.ndarray],
                thr: float = 0.5) -> float:
    """Fraction of samples whose every known label is predicted right.

    Unknown labels (-1) are ignored; a sample with no known label at all is
    left out of the fraction. Returns NaN when no sample is left.
    """
    scores = _to_tensor(scores)
    tristate = _to_tensor(tristate)
    known = (tristate == 1) | (tristate == 0)
    right = (scores >= thr) == (tristate == 1)
    correct = (right | ~known).all(1)
    has_known = known.any(1)
    if not has_known.any():
        return float('nan')
    return float(correct[has_known].double().mean())


@METRICS.register_module()
class MultiLabelPRFMetric(ClassCountsMixin, BaseMetric):
    """Macro precision / recall / F1, the same over the least frequent
    training classes, and exact-match accuracy (PLM paper). In percent.

    Per class (see :func:`precision_recall_f1`): predicted positive when
    ``pred_score >= thr``; unknown labels (-1) are ignored; the precision of
    a class with no predicted positive is 0 (sklearn's ``zero_division=0``),
    so is its recall when it has no positive, and F1 is 0 when P = R = 0.

    Results:

    - ``precision``, ``recall``, ``f1``: means over the classes that have at
      least one known positive in the evaluation set (the others are left
      out of every mean, with a warning naming them, as in
      :class:`LongTailMultiLabelMetric`; on data where every class has a
      positive this is sklearn's ``average='macro'``).
    - ``precision_least``, ``recall_least``, ``f1_least``: means over the
      ``num_least_frequent`` classes with the fewest training positives
      (ties broken by class index), less those without a positive in the
      evaluation set. Reported only when training class counts are given
      (``class_counts`` / ``class_counts_file`` / ``train_dataset``, exactly
      as in :class:`LongTailMultiLabelMetric`); no key (and a warning once)
      if none of them is evaluable.
    - ``exact_match``: share of samples whose every known label is
      predicted right (:func:`exact_match`; samples without a known label
      are left out).
    - with ``classwise=True``: ``precision_classwise``,
      ``recall_classwise``, ``f1_classwise`` (lists of K values).

    Args:
        thr (float): score threshold of a positive prediction.
            Defaults to 0.5.
        num_least_frequent (int): number of least frequent training classes.
            Defaults to 3.
        class_counts, class_counts_file, train_dataset: the training class
            counts; at most one. See :class:`LongTailMultiLabelMetric`.
        classwise (bool): also report the per-class lists. Defaults to False.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): prefix of the result keys. Defaults to
            ``'multi-label'``.
    """
    default_prefix: Optional[str] = 'multi-label'

    def __init__(self,
                 thr: float = 0.5,
                 num_least_frequent: int = 3,
                 class_counts: Optional[Sequence[int]] = None,
                 class_counts_file: Optional[str] = None,
                 train_dataset: Optional[dict] = None,
                 classwise: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if int(num_least_frequent) < 1:
            raise ValueError('num_least_frequent must be >= 1, got '
                             f'{num_least_frequent}.')
        self.thr = float(thr)
        self.num_least_frequent = int(num_least_frequent)
        self.classwise = classwise
        self._init_class_counts(class_counts, class_counts_file,
                                train_dataset)
        self._warned = set()

    def _warn_once(self, key, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            MMLogger.get_current_instance().warning(msg)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store each sample's ``pred_score`` and tri-state labels."""
        for data_sample in data_samples:
            self.results.append(sample_to_result(data_sample))

    def least_frequent_classes(self, num_classes: int) -> Optional[np.ndarray]:
        """Indices of the ``num_least_frequent`` least frequent training
        classes (stable order), or None without class counts."""
        counts = self.get_train_class_counts(num_classes)
        if counts is None:
            return None
        return np.argsort(counts, kind='stable')[:self.num_least_frequent]

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        pred, tristate = stack_results(results)
        num_classes = pred.shape[1]
        prf = precision_recall_f1(pred, tristate, self.thr)
        valid = prf['support'] > 0
        names = ('precision', 'recall', 'f1')
        metrics = {}

        missing = np.flatnonzero(~valid)
        if len(missing):
            self._warn_once(
                ('missing', tuple(missing.tolist())),
                f'{type(self).__name__}: {len(missing)} class(es) have no '
                'positive (known) label in the evaluation set and are left '
                'out of the precision / recall / F1 means: ' +
                ', '.join(class_name(self.dataset_meta, k) for k in missing) +
                '.')
        if valid.any():
            for name in names:
                metrics[name] = float(prf[name][valid].mean() * 100)

        least = self.least_frequent_classes(num_classes)
        if least is not None:
            if ('least', ) not in self._warned:
                self._warned.add(('least', ))
                counts = self.get_train_class_counts(num_classes)
                MMLogger.get_current_instance().info(
                    f'{type(self).__name__}: least frequent training '
                    'classes: ' + ', '.join(
                        f'{class_name(self.dataset_meta, k)}: {counts[k]}'
                        for k in least) + '.')
            idx = least[valid[least]]
            if len(idx):
                for name in names:
                    metrics[f'{name}_least'] = float(prf[name][idx].mean() *
                                                     100)
            else:
                self._warn_once(
                    'least_empty',
                    f'{type(self).__name__}: none of the least frequent '
                    'training classes has a positive label in the evaluation '
                    'set; the *_least metrics are not reported.')

        em = exact_match(pred, tristate, self.thr)
        if np.isnan(em):
            self._warn_once(
                'em_empty', f'{type(self).__name__}: no sample has a known '
                'label; exact_match is not reported.')
        else:
            metrics['exact_match'] = em * 100

        if self.classwise:
            for name in names:
                metrics[f'{name}_classwise'] = (prf[name] * 100).tolist()
        return metrics
