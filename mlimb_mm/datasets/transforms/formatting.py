import numpy as np
import torch
from mmpretrain.datasets.transforms import PackInputs
from mmpretrain.registry import TRANSFORMS

from ..label_utils import tristate_from_positives

UNKNOWN = -1


@TRANSFORMS.register_module()
class PackMultiLabelInputs(PackInputs):
    """Pack an image and its multi-label annotation into a ``DataSample``.

    Every mlimb_mm pipeline ends with this transform, so heads, losses, hooks
    and metrics see one label convention:

    - ``gt_label``: LongTensor of the positive class indices.
    - ``gt_score``: FloatTensor ``(K,)``, the multi-hot target (unknown
      labels are 0 here; losses must read ``gt_tristate`` to ignore them).
    - ``gt_tristate``: Int8Tensor ``(K,)`` with 1 positive, 0 negative,
      -1 unknown.
    - ``sample_idx`` (metainfo): the dataset index, the key of the
      per-sample label store.

    The tri-state vector is read from ``results['gt_tristate']`` when the
    dataset provides it (all mlimb_mm datasets do). Otherwise it is built from
    ``gt_label`` and, for mmpretrain's ``VOC``, ``gt_label_difficult``.

    Args:
        num_classes (int, optional): Number of classes. Needed only for
            datasets that give no ``gt_tristate`` (mmpretrain's ``VOC``).
        difficult_as (str): What a VOC "difficult" label becomes:
            ``'unknown'`` (ignored by losses and metrics, the VOC protocol),
            ``'positive'`` or ``'negative'``. Defaults to ``'unknown'``.
        **kwargs: Arguments of mmpretrain's ``PackInputs`` (``input_key``,
            ``algorithm_keys``, ``meta_keys``).
    """

    DIFFICULT_VALUES = {'unknown': UNKNOWN, 'positive': 1, 'negative': 0}

    def __init__(self, num_classes=None, difficult_as='unknown', **kwargs):
        super().__init__(**kwargs)
        if difficult_as not in self.DIFFICULT_VALUES:
            raise ValueError(
                f'PackMultiLabelInputs: difficult_as={difficult_as!r} is not '
                f'one of {sorted(self.DIFFICULT_VALUES)}.')
        self.num_classes = num_classes
        self.difficult_as = difficult_as

    def _tristate(self, results):
        if 'gt_tristate' in results:
            return np.asarray(results['gt_tristate'], dtype=np.int8)
        if self.num_classes is None:
            raise KeyError(
                'PackMultiLabelInputs: the sample '
                f'{results.get("img_path", results.get("sample_idx"))} has '
                'no `gt_tristate`; set `num_classes` so that it can be built '
                'from `gt_label`.')
        positives = results.get('gt_label')
        tristate = tristate_from_positives(
            [] if positives is None else positives, self.num_classes)
        # A class with both a plain and a difficult object stays positive
        # (as in mmpretrain's VOC metrics); only difficult-only classes
        # take the `difficult_as` value.
        difficult = results.get('gt_label_difficult')
        if difficult is not None and len(difficult):
            difficult = np.setdiff1d(
                np.asarray(difficult, dtype=np.int64),
                np.flatnonzero(tristate == 1))
            tristate[difficult] = self.DIFFICULT_VALUES[self.difficult_as]
        return tristate

    def transform(self, results: dict) -> dict:
        tristate = self._tristate(results)
        results = dict(results)
        results['gt_label'] = np.flatnonzero(tristate == 1)
        results['gt_score'] = (tristate == 1).astype(np.float32)
        packed = super().transform(results)
        packed['data_samples'].set_field(
            torch.from_numpy(tristate), 'gt_tristate')
        return packed

    def __repr__(self):
        return (super().__repr__()[:-1] + f', num_classes={self.num_classes}'
                f', difficult_as={self.difficult_as!r})')
