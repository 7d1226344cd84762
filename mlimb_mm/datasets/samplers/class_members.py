from typing import Iterator, Optional

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from ..label_utils import POSITIVE
from .sharding import rank_shard


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


class ClassSampler(Sampler):
    """Base of the class-based samplers: the dataset's :class:`ClassMembers`,
    a seed shared by all ranks and a full epoch of indices generated from
    ``(seed, epoch)`` by :meth:`epoch_indices` (the same on every rank), of
    which rank ``r`` takes positions ``r, r + W, ...``
    (:func:`~.sharding.rank_shard`).

    Args:
        dataset: A dataset with ``get_tristate_labels()`` or
            ``get_cat_ids()``; it must have a positive label.
        seed (int, optional): Seed shared by all ranks; a synchronised
            random seed when None.
        round_up (bool): Pad the epoch to a multiple of the world size.
    """

    def __init__(self, dataset, seed: Optional[int], round_up: bool):
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.seed = sync_random_seed() if seed is None else seed
        self.round_up = round_up
        self.epoch = 0
        self.members = ClassMembers(dataset_positive_labels(dataset))
        if len(self.members.images) == 0:
            raise ValueError(
                f'{type(self).__name__}: {type(dataset).__name__} has no '
                'positive label at all.')

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """The full epoch (all ranks) of dataset indices."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        return iter(
            rank_shard(
                self.epoch_indices(self.epoch), self.rank, self.world_size,
                self.round_up))

    def set_epoch(self, epoch: int) -> None:
        """Makes every epoch different and reproducible."""
        self.epoch = epoch
