"""Training-set class counts for the metrics that split classes by frequency
(:class:`LongTailMultiLabelMetric`, :class:`MultiLabelPRFMetric`), and the
reading of evaluation samples into ``(pred_score, tristate)`` pairs that both
metrics share."""
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmengine.logging import MMLogger

from ...datasets.label_utils import read_json_file

UNKNOWN = -1


def _as_count_array(counts, where: str) -> np.ndarray:
    arr = np.asarray(counts)
    if arr.ndim != 1:
        raise ValueError(f'{where}: class counts must be a 1-D sequence of '
                         f'ints, got shape {arr.shape}.')
    if arr.size and (not np.all(np.isfinite(arr.astype(np.float64)))
                     or np.any(arr < 0)
                     or np.any(arr != np.round(arr))):
        raise ValueError(f'{where}: class counts must be non-negative '
                         'integers.')
    return arr.astype(np.int64)


def read_class_counts_file(path: str) -> np.ndarray:
    """Read a JSON list of K ints, or ``{"class_counts": [...]}``."""
    data = read_json_file(path, 'class_counts_file')
    if isinstance(data, dict):
        if 'class_counts' not in data:
            raise KeyError(f'class_counts_file {path!r}: a JSON dict must '
                           'have the key "class_counts".')
        data = data['class_counts']
    return _as_count_array(data, f'class_counts_file {path!r}')


def count_dataset_classes(dataset,
                          num_classes: Optional[int] = None) -> np.ndarray:
    """Per-class positive counts of a built dataset.

    Uses ``dataset.get_class_counts()`` when it exists, else counts the
    indices returned by ``dataset.get_cat_ids(i)`` for every sample.
    """
    if hasattr(dataset, 'get_class_counts'):
        return _as_count_array(dataset.get_class_counts(),
                               f'{type(dataset).__name__}.get_class_counts()')
    if not hasattr(dataset, 'get_cat_ids'):
        raise TypeError(f'train_dataset {type(dataset).__name__} has neither '
                        '`get_class_counts()` nor `get_cat_ids()`.')
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    if num_classes is None:
        classes = getattr(dataset, 'metainfo', {}).get('classes')
        if classes is None:
            raise ValueError('Cannot count classes of train_dataset '
                             f'{type(dataset).__name__}: unknown number of '
                             'classes.')
        num_classes = len(classes)
    counts = np.zeros(num_classes, dtype=np.int64)
    for i in range(len(dataset)):
        cats = np.unique(np.asarray(dataset.get_cat_ids(i), dtype=np.int64))
        counts[cats] += 1
    return counts


class ClassCountsMixin:
    """Holds the training class counts of a metric.

    The per-class positive counts of the TRAINING set come from exactly one
    of three sources:

    - ``class_counts``: a sequence of K ints;
    - ``class_counts_file``: a JSON file holding a list of K ints, or a dict
      ``{"class_counts": [...]}``;
    - ``train_dataset``: a dataset config dict (built lazily with
      ``DATASETS.build`` the first time the counts are needed, i.e. in the
      first ``compute_metrics``) or an already built dataset. Its
      ``get_class_counts()`` is used (all mlimb_mm datasets provide it);
      otherwise the positives of ``get_cat_ids(i)`` are counted.

    Call :meth:`_init_class_counts` in ``__init__`` and
    :meth:`get_train_class_counts` in ``compute_metrics``. The JSON file is
    read at construction (so a wrong path fails early); the dataset is built
    at the first call of :meth:`get_train_class_counts` and then cached.
    """

    def _init_class_counts(self,
                           class_counts: Optional[Sequence[int]] = None,
                           class_counts_file: Optional[str] = None,
                           train_dataset: Union[dict, object, None] = None):
        given = [
            name for name, value in (('class_counts', class_counts),
                                     ('class_counts_file', class_counts_file),
                                     ('train_dataset', train_dataset))
            if value is not None
        ]
        if len(given) > 1:
            raise ValueError(f'{type(self).__name__}: give at most one of '
                             '`class_counts`, `class_counts_file` and '
                             f'`train_dataset`, got {given}.')
        self._train_dataset_cfg = train_dataset
        self._class_counts = None
        if class_counts is not None:
            self._class_counts = _as_count_array(
                class_counts, f'{type(self).__name__}(class_counts=...)')
        elif class_counts_file is not None:
            self._class_counts = read_class_counts_file(class_counts_file)

    @property
    def has_class_counts(self) -> bool:
        return (self._class_counts is not None
                or self._train_dataset_cfg is not None)

    def get_train_class_counts(
            self, num_classes: Optional[int] = None) -> Optional[np.ndarray]:
        """The ``(K,)`` int64 training counts, or None when none were given.

        Raises:
            ValueError: when ``num_classes`` is given and differs from the
                number of counts.
        """
        if self._class_counts is None and self._train_dataset_cfg is not None:
            dataset = self._train_dataset_cfg
            if isinstance(dataset, dict):
                from mmpretrain.registry import DATASETS
                dataset = DATASETS.build(dataset)
            self._class_counts = count_dataset_classes(dataset, num_classes)
            self._train_dataset_cfg = None  # built; keep only the counts
            MMLogger.get_current_instance().info(
                f'{type(self).__name__}: read the class counts of '
                f'{len(self._class_counts)} classes from the training set '
                f'{type(dataset).__name__}.')
        counts = self._class_counts
        if (counts is not None and num_classes is not None
                and len(counts) != num_classes):
            raise ValueError(f'{type(self).__name__}: {len(counts)} training '
                             f'class counts but the predictions have '
                             f'{num_classes} classes.')
        return counts


def _to_tensor(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    return torch.as_tensor(np.asarray(x))


def sample_to_result(data_sample: dict) -> dict:
    """Read one evaluation sample (a dict, as MMEngine passes them) into
    ``dict(pred_score=FloatTensor(K), tristate=Int8Tensor(K))``.

    The labels come from, in order of preference:

    1. ``gt_tristate`` (1 positive, 0 negative, -1 unknown), the mlimb_mm
       convention; ``gt_label_difficult`` is then ignored (the packing
       transform already applied it).
    2. ``gt_score``: negative values are unknown (mmpretrain's convention for
       VOC difficult labels), values >= 0.5 positive, the rest negative.
    3. ``gt_label``: positive indices, every other class negative.

    In cases 2 and 3, the classes in ``gt_label_difficult`` (mmpretrain's
    VOC) that are not also in ``gt_label`` become unknown, as mmpretrain's
    ``VOCMultiLabelMetric`` does with ``difficult_as_positive=None``.
    """
    pred = _to_tensor(data_sample['pred_score']).clone()
    num_classes = pred.shape[-1]
    if 'gt_tristate' in data_sample:
        tristate = _to_tensor(data_sample['gt_tristate']).to(torch.int8)
    else:
        if 'gt_score' in data_sample:
            score = _to_tensor(data_sample['gt_score']).float()
            tristate = (score >= 0.5).to(torch.int8)
            tristate[score < 0] = UNKNOWN
        else:
            tristate = torch.zeros(num_classes, dtype=torch.int8)
            labels = _to_tensor(data_sample['gt_label']).long().reshape(-1)
            tristate[labels] = 1
        difficult = data_sample.get('gt_label_difficult', None)
        if difficult is not None and len(difficult):
            difficult = set(_to_tensor(difficult).long().reshape(-1).tolist())
            if 'gt_label' in data_sample:
                difficult -= set(
                    _to_tensor(data_sample['gt_label']).long().reshape(
                        -1).tolist())
            if difficult:
                tristate[sorted(difficult)] = UNKNOWN
    if tristate.shape != pred.shape:
        raise ValueError(f'pred_score has shape {tuple(pred.shape)} but the '
                         f'labels have shape {tuple(tristate.shape)}.')
    return dict(pred_score=pred, tristate=tristate.clone())


def stack_results(results):
    """Stack the per-sample results into ``(N, K)`` scores and tri-states."""
    pred = torch.stack([r['pred_score'] for r in results])
    tristate = torch.stack([r['tristate'] for r in results])
    return pred, tristate


def class_name(dataset_meta: Optional[dict], k: int) -> str:
    classes = (dataset_meta or {}).get('classes')
    if classes is not None and k < len(classes):
        return f'{k} ({classes[k]})'
    return str(k)
