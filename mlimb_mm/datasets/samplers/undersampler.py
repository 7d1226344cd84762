from typing import Optional

import numpy as np
from mmpretrain.registry import DATA_SAMPLERS

from .class_members import ClassSampler
from .sharding import shard_sizes


@DATA_SAMPLERS.register_module()
class ClassUndersampler(ClassSampler):
    """The under-sampling baseline of PLM (Duarte et al., §3.1, Tables 1-2):
    "for each epoch, we select S samples from each class (without
    duplication)".

    Every epoch each class draws ``S`` of its positive images uniformly
    without replacement (all of them when it has fewer than ``S``); the
    epoch is the *union* of these draws, each image once: an image drawn
    for several classes (co-occurrence) appears once in the epoch. The
    epoch is shuffled. So every class has at least ``min(S, n_k)`` of its
    images in the epoch -- more when images drawn for other classes also
    contain it (the co-occurrence problem the paper discusses in §4: head
    classes stay over-represented) -- and the epoch holds between
    ``max_k min(S, n_k)`` and ``sum_k min(S, n_k)`` images. Images without
    any positive label are never drawn.

    Because of the union the epoch length changes from epoch to epoch; it
    is computed for the current epoch (``set_epoch``), and ``len()``
    reports it. MMEngine computes schedules converted to iterations from
    ``len(dataloader)`` at build time (epoch 0's length); epoch-based
    schedules are unaffected.

    The whole epoch is generated from ``(seed, epoch)`` on every rank, then
    padded by repeating its start to a multiple of the world size (like
    ``ClassAwareSampler`` / ``DefaultSampler``) and rank ``r`` takes
    positions ``r, r + W, ...``: the shards are disjoint. Cost per epoch:
    one random key per positive label and a sort, O(positive labels)
    memory (O(N) for a bounded number of labels per image), vectorised
    numpy; no Python loop over images or classes.

    Args:
        dataset: A dataset with ``get_tristate_labels()`` (mlimb_mm datasets
            and label wrappers) or ``get_cat_ids()``.
        samples_per_class (int): ``S``. Defaults to 500 (the paper's
            MultiMNIST; 1000 on MSCOCO).
        seed (int, optional): Seed shared by all ranks; a synchronised
            random seed when None. Defaults to None.
        round_up (bool): Pad the epoch to a multiple of the world size.
            Defaults to True.
    """

    def __init__(self,
                 dataset,
                 samples_per_class: int = 500,
                 seed: Optional[int] = None,
                 round_up: bool = True):
        if int(samples_per_class) != samples_per_class or \
                samples_per_class < 1:
            raise ValueError('ClassUndersampler: samples_per_class must be a '
                             f'positive int, got {samples_per_class!r}.')
        super().__init__(dataset, seed, round_up)
        self.samples_per_class = int(samples_per_class)
        # class of every entry of members.images (CSR order)
        self._entry_class = np.repeat(np.arange(self.members.num_classes),
                                      self.members.counts)
        self._entry_rank_base = np.repeat(self.members.offsets[:-1],
                                          self.members.counts)
        self._cache = None  # (epoch, indices)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """The full epoch (all ranks, before padding) of dataset indices:
        the shuffled union of ``S`` images per class."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        keys = rng.random(len(self.members.images))
        # sort by class, then by the random key: a random order per class
        order = np.lexsort((keys, self._entry_class))
        rank_in_class = np.arange(len(order)) - self._entry_rank_base
        chosen = self.members.images[order[rank_in_class <
                                           self.samples_per_class]]
        indices = rng.permutation(np.unique(chosen))
        self._cache = (epoch, indices)
        return indices

    def __len__(self) -> int:
        return shard_sizes(
            len(self.epoch_indices(self.epoch)), self.rank, self.world_size,
            self.round_up)[0]
