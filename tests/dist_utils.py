"""Run a function in several CPU processes joined by a gloo group."""
import os
import pickle
import socket

import torch.distributed as dist
import torch.multiprocessing as mp


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _worker(rank, world_size, port, func, args, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), WORLD_SIZE=str(world_size))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        result = func(*args)
        with open(os.path.join(out_dir, f'rank{rank}.pkl'), 'wb') as f:
            pickle.dump(result, f)
    finally:
        dist.destroy_process_group()


def run_distributed(func, args=(), world_size=2, out_dir=None):
    """Call ``func(*args)`` on ``world_size`` gloo ranks; returns the list
    of their results (``func`` must be importable by module name)."""
    mp.spawn(_worker, args=(world_size, free_port(), func, args, out_dir),
             nprocs=world_size, join=True)
    results = []
    for rank in range(world_size):
        with open(os.path.join(out_dir, f'rank{rank}.pkl'), 'rb') as f:
            results.append(pickle.load(f))
    return results
