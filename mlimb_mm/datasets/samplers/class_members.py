import numpy as np

from ..label_utils import POSITIVE


def dataset_positive_labels(dataset) -> np.ndarray:
    """``(N, K)`` bool matrix of positive labels of an mlimb_mm dataset
    (or label wrapper); mmengine's dataset wrappers are looked through when
    they keep the sample order (``RepeatDataset`` is not supported)."""
    if hasattr(dataset, 'get_tristate_labels'):
        return np.asarray(dataset.get_tristate_labels()) == POSITIVE
    if hasattr(dataset, 'get_cat_ids') and hasattr(dataset, 'CLASSES'):
        num_classes = len(dataset.CLASSES)
        positives = np.zeros((len(dataset), num_classes), dtype=bool)
        for idx in range(len(dataset)):
            positives[idx, dataset.get_cat_ids(idx)] = True
        return positives
    raise TypeError(
        f'{type(dataset).__name__} exposes neither get_tristate_labels() nor '
        'get_cat_ids(): class-based samplers need per-sample labels.')


class ClassMembers:
    """The images of every class in CSR form: ``images[offsets[k]:
    offsets[k+1]]`` are the indices of the images where class k is
    positive. Memory: one int64 per positive label plus K+1 offsets.

    Args:
        positives (np.ndarray): ``(N, K)`` bool positive-label matrix.
    """

    def __init__(self, positives: np.ndarray):
        positives = np.asarray(positives, dtype=bool)
        self.num_samples, self.num_classes = positives.shape
        image_idx, class_idx = np.nonzero(positives)
        order = np.argsort(class_idx, kind='stable')
        self.images = image_idx[order]
        self.counts = np.bincount(class_idx, minlength=self.num_classes)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])

    def of(self, cls: int) -> np.ndarray:
        return self.images[self.offsets[cls]:self.offsets[cls + 1]]

    def draw_cycling(self, cls: int, num_draws: int,
                     rng: np.random.Generator) -> np.ndarray:
        """``num_draws`` images of class ``cls`` from a cycling shuffled
        list: every image once per cycle, reshuffled at each cycle."""
        members = self.of(cls)
        cycles = -(-num_draws // len(members))
        return np.concatenate(
            [rng.permutation(members) for _ in range(cycles)])[:num_draws]
