import math
from typing import Optional

import numpy as np
from mmpretrain.registry import DATA_SAMPLERS

from .class_members import ClassSampler
from .sharding import shard_sizes


@DATA_SAMPLERS.register_module()
class ClassAwareSampler(ClassSampler):
    """Class-aware re-sampling for multi-label data (Shen et al. 2016), as
    used by the Distribution-Balanced loss (Wu et al. 2020, §3.1).

    Each draw picks a class uniformly, then an image of that class
    uniformly. Both come from cycling shuffled lists: the class list is a
    fresh permutation of the classes at every cycle, and each class's image
    list a fresh permutation of its images, so within an epoch every class
    is visited equally often and its images as evenly as possible. An epoch
    has ``ceil(N_max * K / reduce)`` draws (each class visited
    ``N_max / reduce`` times, ``N_max`` the largest class size; the DB paper
    uses ``reduce=4``). Eq. (1) of the DB paper predicts the resulting class
    frequencies: ``p_i = 1/C sum_j n_{i&j} / n_j``.

    The whole epoch is generated from ``seed + epoch`` on every rank (the
    cycling state restarts each epoch rather than carrying over, which keeps
    an epoch reproducible and a resumed run identical), then rank ``r``
    takes positions ``r, r + W, r + 2W, ...``: the ranks' shards are
    disjoint. Cost per epoch: O(draws + positive labels) memory and
    vectorised numpy work with a Python loop over classes only.

    Classes without any positive image are skipped (and counted in
    :attr:`num_empty_classes`).

    Args:
        dataset: A dataset with ``get_tristate_labels()`` (mlimb_mm datasets
            and label wrappers) or ``get_cat_ids()``.
        reduce (float): Divisor of the epoch length. Defaults to 4.
        seed (int, optional): Seed shared by all ranks; a synchronised
            random seed when None. Defaults to None.
        round_up (bool): Pad the epoch to a multiple of the world size.
            Defaults to True.
    """

    def __init__(self,
                 dataset,
                 reduce: float = 4,
                 seed: Optional[int] = None,
                 round_up: bool = True):
        if reduce <= 0:
            raise ValueError(f'ClassAwareSampler: reduce must be > 0, got '
                             f'{reduce}.')
        super().__init__(dataset, seed, round_up)
        self.reduce = reduce
        self.classes = np.flatnonzero(self.members.counts > 0)
        self.num_empty_classes = self.members.num_classes - len(self.classes)
        max_size = int(self.members.counts.max())
        self.epoch_draws = math.ceil(max_size * len(self.classes) / reduce)
        self.num_samples, self.total_size = shard_sizes(
            self.epoch_draws, self.rank, self.world_size, round_up)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """The full epoch (all ranks) of dataset indices."""
        rng = np.random.default_rng([self.seed, epoch])
        num_classes = len(self.classes)
        cycles = -(-self.epoch_draws // num_classes)
        class_order = np.concatenate([
            rng.permutation(self.classes) for _ in range(cycles)
        ])[:self.epoch_draws]
        # Positions of each class's draws, grouped by class in one sort.
        positions = np.argsort(class_order, kind='stable')
        draws_per_class = np.bincount(
            class_order, minlength=self.members.num_classes)
        ends = np.cumsum(draws_per_class)
        indices = np.empty(self.epoch_draws, dtype=np.int64)
        for cls in self.classes:
            where = positions[ends[cls] - draws_per_class[cls]:ends[cls]]
            indices[where] = self.members.draw_cycling(cls, len(where), rng)
        return indices

    def __len__(self) -> int:
        return self.num_samples
