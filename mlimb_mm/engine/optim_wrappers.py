"""Mixed precision on any device: the optimizer wrapper ``--amp`` picks.

MMEngine's ``AmpOptimWrapper`` (float16 autocast and a dynamic loss scaler)
asserts a GPU (or NPU / MLU / MUSA): on a CPU-only machine it refuses to
build. :class:`AutocastOptimWrapper` runs the forward pass under bfloat16
autocast on whatever device the model is, without a loss scaler (bfloat16
has float32's exponent range: gradients do not underflow), and
:func:`amp_optim_wrapper_cfg` turns a config's ``optim_wrapper`` into the
mixed-precision one for the device at hand (``tools/train.py --amp``).
"""
import logging
from contextlib import contextmanager
from typing import Optional, Union

import torch
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
# MMEngine's root registry (mmpretrain's child registry looks it up there):
# the wrapper builds with or without mmpretrain's default scope
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn

__all__ = ['AutocastOptimWrapper', 'amp_optim_wrapper_cfg']


def _device_type(model: nn.Module) -> str:
    module = model.module if is_model_wrapper(model) else model
    for tensor in module.parameters():
        return tensor.device.type
    for tensor in module.buffers():
        return tensor.device.type
    return 'cpu'


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose training forward pass (data preprocessor,
    model, losses: MMEngine's ``optim_context``) runs under
    ``torch.autocast(device_type, dtype=bfloat16)`` on the model's device,
    CPU or GPU. No loss scaler: bfloat16 keeps float32's exponent range, so
    small gradients do not flush to zero as in float16 (for float16 on a
    GPU use MMEngine's ``AmpOptimWrapper``, which scales the loss).

    ``tools/train.py --amp`` uses it on machines without a GPU. The losses
    of mlimb_mm compute their logs and exponentials in float32 whatever the
    logits' dtype; the parameters, gradients and optimizer state stay
    float32.

    Args:
        dtype (str | torch.dtype): The autocast dtype; only ``'bfloat16'``
            (the dtype CPU autocast supports and that needs no loss
            scaler). Defaults to ``'bfloat16'``.
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self, dtype: Union[str, torch.dtype] = 'bfloat16',
                 **kwargs):
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype.replace('torch.', ''), None)
        if dtype != torch.bfloat16:
            raise ValueError(
                'AutocastOptimWrapper: dtype must be bfloat16 (float16 '
                'needs a loss scaler: use AmpOptimWrapper on a GPU), got '
                f'{dtype!r}.')
        super().__init__(**kwargs)
        self.cast_dtype = dtype

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast(
                device_type=_device_type(model), dtype=self.cast_dtype):
            yield


def amp_optim_wrapper_cfg(optim_wrapper: dict,
                          device: Optional[str] = None) -> dict:
    """The mixed-precision version of a config's ``optim_wrapper`` (a new
    dict): on a GPU (NPU, MLU) MMEngine's ``AmpOptimWrapper`` (float16, a
    dynamic loss scaler unless ``loss_scale`` is set) as mmpretrain's
    ``--amp``; on the CPU :class:`AutocastOptimWrapper` (bfloat16, no
    loss scaler), which is logged. ``device``: ``mmengine.device.
    get_device()`` when None."""
    cfg = dict(optim_wrapper)
    device = device or get_device()
    if cfg.get('type', 'OptimWrapper') not in ('OptimWrapper',
                                               'AmpOptimWrapper',
                                               'AutocastOptimWrapper'):
        raise ValueError(
            f'--amp: the config\'s optim_wrapper type {cfg["type"]!r} is not '
            'OptimWrapper; set the mixed-precision wrapper in the config.')
    if device == 'cpu':
        cfg.pop('loss_scale', None)
        cfg.update(type='AutocastOptimWrapper', dtype='bfloat16')
        print_log(
            '--amp without a GPU: the forward pass runs under bfloat16 '
            'autocast on the CPU (AutocastOptimWrapper, no loss scaler); '
            'float16 AMP with a loss scaler (AmpOptimWrapper) needs a GPU.',
            'current', logging.WARNING)
    else:
        if cfg.get('type') == 'AutocastOptimWrapper':
            cfg.pop('dtype', None)
        cfg['type'] = 'AmpOptimWrapper'
        cfg.setdefault('loss_scale', 'dynamic')
    return cfg
