from typing import List

import numpy as np
from mmpretrain.datasets import MultiLabelDataset

from .label_utils import POSITIVE


class BaseMultiLabelDataset(MultiLabelDataset):
    """Base of mlimb_mm's multi-label datasets: tri-state labels per sample.

    Each data info holds ``gt_tristate``, an ``np.int8`` vector of K labels
    (1 positive, 0 negative, -1 unknown), and ``gt_label``, the positive
    indices, so mmpretrain's samplers and ``get_cat_ids`` keep working.

    Memory: with MMEngine's default ``serialize_data=True`` every data info is
    pickled into one buffer; a tri-state vector costs K bytes plus about 120
    bytes of numpy header per image (Open Images, 600 classes: ~0.7 KB per
    image). :meth:`get_tristate_labels` stacks them once into an ``(N, K)``
    int8 matrix (1 byte per label) for samplers, label stores and metrics.
    """

    def get_tristate_labels(self) -> np.ndarray:
        """The ``(N, K)`` int8 tri-state label matrix, in dataset order.

        Built once (one pass over the data infos) and cached.
        """
        self._fully_initialized or self.full_init()
        cached = getattr(self, '_tristate_cache', None)
        if cached is None or len(cached) != len(self):
            cached = np.stack([
                np.asarray(self.get_data_info(i)['gt_tristate'], np.int8)
                for i in range(len(self))
            ]) if len(self) else np.zeros((0, len(self.CLASSES)), np.int8)
            self._tristate_cache = cached
        return cached

    def get_clean_tristate_labels(self) -> np.ndarray:
        """The clean labels kept beside corrupted ones (benchmark files
        written by ``tools/dataset_converters``, key ``gt_tristate_clean``);
        the training labels when the data has no such key."""
        self._fully_initialized or self.full_init()
        if len(self) == 0 or 'gt_tristate_clean' not in self.get_data_info(0):
            return self.get_tristate_labels()
        return np.stack([
            np.asarray(self.get_data_info(i)['gt_tristate_clean'], np.int8)
            for i in range(len(self))
        ])

    def get_class_counts(self) -> np.ndarray:
        """Number of positive labels of each class, shape ``(K,)``."""
        return (self.get_tristate_labels() == POSITIVE).sum(0).astype(
            np.int64)

    def get_cat_ids(self, idx: int) -> List[int]:
        """Positive class indices of sample ``idx``."""
        return np.flatnonzero(
            np.asarray(self.get_data_info(idx)['gt_tristate']) ==
            POSITIVE).tolist()
