"""Rank sharding shared by mlimb_mm's samplers: every rank generates the
same epoch of indices, then takes positions ``rank, rank + W, ...``."""
import math
from typing import List, Tuple

import numpy as np


def shard_sizes(num_draws: int, rank: int, world_size: int,
                round_up: bool) -> Tuple[int, int]:
    """``(num_samples of this rank, total_size of the epoch)``.

    With ``round_up`` the epoch is padded to a multiple of the world size
    (as mmengine's ``DefaultSampler``); otherwise ranks may differ by one.
    """
    if round_up:
        per_rank = math.ceil(num_draws / world_size)
        return per_rank, per_rank * world_size
    return math.ceil((num_draws - rank) / world_size), num_draws


def rank_shard(indices: np.ndarray, rank: int, world_size: int,
               round_up: bool) -> List[int]:
    """This rank's disjoint share of an epoch's ``indices`` (padded by
    repeating the epoch from its start when ``round_up``)."""
    _, total = shard_sizes(len(indices), rank, world_size, round_up)
    if total > len(indices):
        indices = np.resize(indices, total)
    return indices[rank:total:world_size].tolist()
