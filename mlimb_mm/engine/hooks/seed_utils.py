import torch
from mmengine import dist


def shared_seed(seed, runner) -> int:
    """The seed a method hook draws with, identical on every rank: ``seed``
    when given, else the runner's, broadcast from rank 0 (the runner's seed
    differs per rank with ``diff_rank_seed=True``); 0 when neither is set.
    """
    if seed is None:
        seed = getattr(runner, 'seed', None)
    seed = 0 if seed is None else int(seed)
    if dist.get_world_size() > 1:
        buf = torch.tensor([seed], dtype=torch.int64)
        dist.broadcast(buf, 0)
        seed = int(buf.item())
    return seed
