"""The branch samplers of COMIC's released code, fused into one index
stream: per training step, ``B`` indices of each stream, one after the
other (instance, reversed, class-balanced by default), so that one
DataLoader batch of ``num_streams * B`` feeds the three branches of
``COMICClassifier(branch_streams=...)``."""
import math
from typing import Iterator, Optional, Sequence

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from mmpretrain.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ...models.utils.comic import STREAM_KINDS, stream_class_probabilities
from .class_members import ClassMembers, dataset_positive_labels
from .sharding import rank_shard, shard_sizes

__all__ = ['COMICSampler']

_STATE_VERSION = 1
_SALTS = dict(instance=0x494E5354, reversed=0x52455652, balanced=0x42414C41)


@DATA_SAMPLERS.register_module()
class COMICSampler(Sampler):
    """Several index streams per step, for COMIC's branches (Zhang et al.,
    ICCV 2023; the samplers of the authors' released code).

    Streams (``streams``, in batch order):

    - ``'instance'``: a permutation of the dataset per epoch;
    - ``'reversed'``: a class drawn with probability proportional to
      ``n_max / n_k``, then an image of it;
    - ``'balanced'``: a class drawn uniformly, then an image of it.

    Classes are drawn independently per draw; the images of a class come
    from a cycling shuffled list (each once per cycle). ``n_k`` counts the
    observed positives; classes without any are never drawn.

    **Layout and sharding.** Every stream's epoch is generated from
    ``(seed, stream, position, epoch)`` identically on every rank; rank
    ``r`` takes positions ``r, r + W, ...`` (disjoint shards). A rank has
    ``steps = ceil(ceil(N / W) / B)`` steps; the instance stream is padded
    by repeating its shard's start, a re-sampled stream has ``steps * B *
    W`` draws. Per step the sampler yields the ``B`` indices of each stream
    in turn: the DataLoader's ``batch_size`` must be
    :attr:`expected_batch_size` (``MovingGradientHook`` checks it).

    Args:
        dataset: A dataset with ``get_tristate_labels()`` (or
            ``get_cat_ids()``).
        batch_size_per_stream (int): ``B``.
        streams (sequence[str]): The streams, in batch order. Defaults to
            ``('instance', 'reversed', 'balanced')``.
        seed (int, optional): Shared seed; a synchronised one when None.
    """

    def __init__(self,
                 dataset,
                 batch_size_per_stream: int,
                 streams: Sequence[str] = STREAM_KINDS,
                 seed: Optional[int] = None):
        name = type(self).__name__
        if int(batch_size_per_stream) < 1:
            raise ValueError(f'{name}: batch_size_per_stream must be >= 1, '
                             f'got {batch_size_per_stream}.')
        streams = tuple(streams)
        if not streams or any(s not in STREAM_KINDS for s in streams):
            raise ValueError(f'{name}: streams must be a non-empty sequence '
                             f'of {STREAM_KINDS}, got {streams}.')
        if len(dataset) == 0:
            raise ValueError(f'{name}: {type(dataset).__name__} is empty.')
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.batch_size_per_stream = int(batch_size_per_stream)
        self.streams = streams
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0
        self.num_images = len(dataset)
        shard, _ = shard_sizes(self.num_images, self.rank, self.world_size,
                               round_up=True)
        self.steps = math.ceil(shard / self.batch_size_per_stream)
        self.stream_size = self.steps * self.batch_size_per_stream
        self.members = None
        self.class_probs = {}
        if any(s != 'instance' for s in streams):
            self.members = ClassMembers(dataset_positive_labels(dataset))
            for kind in set(streams) - {'instance'}:
                self.class_probs[kind] = stream_class_probabilities(
                    self.members.counts, kind)

    @property
    def num_streams(self) -> int:
        return len(self.streams)

    @property
    def expected_batch_size(self) -> int:
        """The DataLoader ``batch_size`` this sampler needs."""
        return self.num_streams * self.batch_size_per_stream

    def _rng(self, position: int) -> np.random.Generator:
        kind = self.streams[position]
        return np.random.default_rng(
            [self.seed, _SALTS[kind], position, int(self.epoch)])

    def epoch_draws(self, position: int) -> np.ndarray:
        """The full epoch (all ranks) of stream ``position``."""
        kind, rng = self.streams[position], self._rng(position)
        if kind == 'instance':
            return rng.permutation(self.num_images)
        num = self.stream_size * self.world_size
        probs = self.class_probs[kind]
        classes = rng.choice(len(probs), size=num, p=probs)
        draws = np.empty(num, dtype=np.int64)
        order = np.argsort(classes, kind='stable')
        per_class = np.bincount(classes, minlength=len(probs))
        ends = np.cumsum(per_class)
        for cls in np.flatnonzero(per_class):
            where = order[ends[cls] - per_class[cls]:ends[cls]]
            draws[where] = self.members.draw_cycling(cls, len(where), rng)
        return draws

    def stream_indices(self, position: int) -> np.ndarray:
        """This rank's ``steps * B`` indices of stream ``position``."""
        shard = np.asarray(rank_shard(self.epoch_draws(position), self.rank,
                                      self.world_size, round_up=True))
        return np.resize(shard, self.stream_size)

    def __iter__(self) -> Iterator[int]:
        b = self.batch_size_per_stream
        parts = [self.stream_indices(i).reshape(self.steps, b)
                 for i in range(self.num_streams)]
        return iter(np.concatenate(parts, axis=1).reshape(-1).tolist())

    def __len__(self) -> int:
        return self.num_streams * self.stream_size

    def set_epoch(self, epoch: int) -> None:
        """Makes every epoch different and reproducible."""
        self.epoch = int(epoch)

    def state_dict(self) -> dict:
        return dict(version=_STATE_VERSION, seed=self.seed,
                    streams=list(self.streams))

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state['seed'])
