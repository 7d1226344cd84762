"""Process-group set-up that MMEngine 0.10.x leaves to CUDA machines.

MMEngine's ``init_dist`` calls ``torch.cuda.set_device`` and its Runner
wraps the model in DDP with ``device_ids=[LOCAL_RANK]``: both fail on a
machine without GPUs. When a distributed launcher is asked for and no GPU
is visible, :func:`setup_cpu_distributed` creates a gloo process group
itself (the Runner then skips its own ``init_dist``) and makes the Runner
wrap the model with ``device_ids=None``. On GPU machines it does nothing.
"""
import os

import torch
import torch.distributed as torch_dist


def setup_cpu_distributed(cfg, launcher: str):
    """Initialise a gloo process group for a CPU-only distributed run.

    Args:
        cfg (Config): The config; ``env_cfg.dist_cfg`` and
            ``model_wrapper_cfg`` are updated in place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        bool: Whether a CPU process group is in use.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} on a machine without GPUs: only '
            '`--launcher pytorch` (tools/dist_train.sh) runs on CPU.')
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher pytorch needs the environment '
                           f'variables {missing} (start it with '
                           'tools/dist_train.sh or torchrun).')
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo', init_method='env://')
    cfg.setdefault('env_cfg', {})
    cfg.env_cfg.setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg['backend'] = 'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    cfg.model_wrapper_cfg = wrapper
    return True
