"""The two samplers of BalanceMix (Song et al. 2024, Algorithm 1 lines 5-6)
fused into one index stream.

Every training step needs a batch ``B_R`` from a random sampler and a batch
``B_M`` of the same size from the confidence-based minority sampler,
Eq. (2)-(4). One DataLoader batch carries both: :class:`BalanceMixSampler`
yields, per step, ``B`` random indices followed by ``B`` minority indices,
so the DataLoader's ``batch_size`` must be ``2 * batch_size_per_half``
(``BalanceMixHook`` checks it at the start of training: the sampler cannot
see the batch size), and ``BalanceMixDataPreprocessor`` splits the collated
batch back into its halves and mixes them, Eq. (5).
"""
import math
from typing import Iterator, Optional

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from mmpretrain.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from .minority_sampler import MinoritySampler
from .sharding import rank_shard, shard_sizes

__all__ = ['BalanceMixSampler']

_STATE_VERSION = 1
#: salts of the random halves' streams, so they differ from the minority
#: sampler's ``default_rng([seed, epoch])``
_RANDOM_SALT = 0x52414E44  # 'RAND'
_SECOND_SALT = 0x4D495855  # 'MIXU'


@DATA_SAMPLERS.register_module()
class BalanceMixSampler(Sampler):
    """Random half + minority half per step, in one index stream.

    **Layout.** The random sampler's epoch is a permutation of the dataset
    drawn from ``default_rng([seed, salt, epoch])`` on every rank, padded
    (repeating its start) to a multiple of the world size; rank ``r`` takes
    positions ``r, r + W, ...`` (disjoint shards, as ``DefaultSampler``).
    A rank's shard is cut into ``steps = ceil(shard / B)`` chunks of ``B``
    (the last one completed by repeating the shard's start, so that every
    DataLoader batch holds exactly ``2B`` indices). Per step the sampler
    yields the ``B`` random indices of the step, then ``B`` indices of the
    minority sampler: a :class:`MinoritySampler` with ``epoch_draws = steps
    * B * W`` (so it yields exactly ``steps * B`` indices per rank, also in
    disjoint rank shards). ``len(sampler) = 2 * B * steps``.

    ``use_minority=False`` replaces the minority half by a second, independent
    random permutation (same layout): random + random mixing, i.e. plain
    Mixup (the "+ Random sampler" row of Table 5).

    The minority distribution is refreshed by ``BalanceMixHook`` through
    :attr:`minority` (``update_from_predictions``); the sampler's
    :meth:`state_dict` holds the seed and the minority sampler's state.

    Args:
        dataset: A dataset with ``get_tristate_labels()`` (or
            ``get_cat_ids()``), as :class:`MinoritySampler` needs.
        batch_size_per_half (int): ``B``; the DataLoader's ``batch_size``
            must be ``2 * B``.
        use_minority (bool): Minority sampling for the second half; False
            gives random + random. Defaults to True.
        seed (int, optional): Shared seed; a synchronised random seed when
            None.
        score_floor (float): :class:`MinoritySampler`'s guard. Defaults to
            1e-6.
        score_terms (str): :class:`MinoritySampler`'s Eq. (3) terms,
            ``'all'`` (as printed, default) or ``'positives'``.
    """

    def __init__(self,
                 dataset,
                 batch_size_per_half: int,
                 use_minority: bool = True,
                 seed: Optional[int] = None,
                 score_floor: float = 1e-6,
                 score_terms: str = 'all'):
        if int(batch_size_per_half) < 1:
            raise ValueError('BalanceMixSampler: batch_size_per_half must be '
                             f'>= 1, got {batch_size_per_half}.')
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.batch_size_per_half = int(batch_size_per_half)
        self.use_minority = bool(use_minority)
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0
        num = len(dataset)
        if num == 0:
            raise ValueError(f'BalanceMixSampler: {type(dataset).__name__} '
                             'is empty.')
        self.num_images = num
        self.shard_size, _ = shard_sizes(num, self.rank, self.world_size,
                                         round_up=True)
        self.steps = math.ceil(self.shard_size / self.batch_size_per_half)
        self.half_size = self.steps * self.batch_size_per_half
        self.minority: Optional[MinoritySampler] = None
        if self.use_minority:
            self.minority = MinoritySampler(
                dataset,
                epoch_draws=self.half_size * self.world_size,
                seed=self.seed,
                round_up=True,
                score_floor=score_floor,
                score_terms=score_terms)
            assert len(self.minority) == self.half_size

    @property
    def expected_batch_size(self) -> int:
        """The DataLoader ``batch_size`` this sampler needs: ``2B``."""
        return 2 * self.batch_size_per_half

    def _random_half(self, salt: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, salt, int(self.epoch)])
        perm = rng.permutation(self.num_images)
        shard = np.asarray(
            rank_shard(perm, self.rank, self.world_size, round_up=True))
        return np.resize(shard, self.half_size)  # whole steps of B

    def random_indices(self) -> np.ndarray:
        """This rank's random half of the epoch, ``(steps * B,)``."""
        return self._random_half(_RANDOM_SALT)

    def second_indices(self) -> np.ndarray:
        """This rank's minority half (or second random half) of the epoch,
        ``(steps * B,)``."""
        if self.minority is None:
            return self._random_half(_SECOND_SALT)
        self.minority.set_epoch(self.epoch)
        return np.fromiter(iter(self.minority), dtype=np.int64,
                           count=self.half_size)

    def __iter__(self) -> Iterator[int]:
        b = self.batch_size_per_half
        first = self.random_indices().reshape(self.steps, b)
        second = self.second_indices().reshape(self.steps, b)
        return iter(np.concatenate([first, second], axis=1).reshape(-1)
                    .tolist())

    def __len__(self) -> int:
        return 2 * self.half_size

    def set_epoch(self, epoch: int) -> None:
        """Makes every epoch different and reproducible."""
        self.epoch = int(epoch)
        if self.minority is not None:
            self.minority.set_epoch(epoch)

    def state_dict(self) -> dict:
        return dict(
            version=_STATE_VERSION,
            seed=self.seed,
            batch_size_per_half=self.batch_size_per_half,
            use_minority=self.use_minority,
            minority=None
            if self.minority is None else self.minority.state_dict())

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state['seed'])
        if bool(state.get('use_minority', True)) != self.use_minority:
            raise ValueError(
                'BalanceMixSampler: the state was saved with use_minority='
                f"{state.get('use_minority')}, the sampler has "
                f'{self.use_minority}.')
        if self.minority is not None and state.get('minority') is not None:
            self.minority.load_state_dict(state['minority'])
