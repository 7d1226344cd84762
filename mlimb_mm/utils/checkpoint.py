"""Let ``torch.load(weights_only=True)`` read MMEngine checkpoints.

torch >= 2.6 loads checkpoints with ``weights_only=True``: only tensors,
containers and allow-listed globals are unpickled. MMEngine 0.10.x stores
numpy arrays and scalars in ``meta`` and its ``HistoryBuffer`` objects in
``message_hub``, so its own ``--resume`` fails with an ``UnpicklingError``.
Rather than loading arbitrary pickles (``weights_only=False``), we
allow-list exactly the globals that MMEngine and mlimb_mm checkpoints hold:

- numpy: ``ndarray``, ``dtype`` and its per-type classes, scalar types and
  the two reconstruction functions (under both the numpy 1 and numpy 2
  module paths, so checkpoints written with either load);
- ``mmengine.logging.HistoryBuffer``;
- ``builtins.getattr``, which pickle uses to store ``HistoryBuffer``'s
  statistics methods (``getattr(HistoryBuffer, 'mean')``). It is *not*
  allow-listed as such: the name resolves to :func:`history_buffer_getattr`,
  which only returns ``HistoryBuffer`` statistics methods and raises for
  anything else.

Any other global still fails loudly with torch's message naming it.
"""
import builtins

import numpy as np
import torch

_registered = False
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_getattr(owner, name):
    """Stand-in for ``builtins.getattr`` while unpickling a checkpoint:
    resolves only ``HistoryBuffer.<statistics method>``."""
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = set(_HISTORY_BUFFER_STATISTICS) | set(
        HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and name in allowed:
        return builtins.getattr(HistoryBuffer, name)
    raise RuntimeError(
        f'checkpoint asks for getattr({owner!r}, {name!r}); mlimb_mm only '
        'allows HistoryBuffer statistics methods (refusing to unpickle '
        'arbitrary attributes).')


def _numpy_multiarray():
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray


def checkpoint_safe_globals():
    """The allow-list: globals, or ``(global, pickled name)`` pairs."""
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = _numpy_multiarray()
    scalar_types = [
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
        np.uint32, np.uint64, np.float16, np.float32, np.float64
    ]
    dtype_classes = [type(np.dtype(t)) for t in scalar_types]
    reconstruct_names = []
    for package in ('numpy.core', 'numpy._core'):
        reconstruct_names += [
            (multiarray._reconstruct, f'{package}.multiarray._reconstruct'),
            (multiarray.scalar, f'{package}.multiarray.scalar'),
        ]
    return [
        HistoryBuffer,
        np.ndarray,
        np.dtype,
        *scalar_types,
        *dtype_classes,
        *reconstruct_names,
        (history_buffer_getattr, 'builtins.getattr'),
        (history_buffer_getattr, '__builtin__.getattr'),
    ]


def register_checkpoint_safe_globals():
    """Allow-list :func:`checkpoint_safe_globals` in ``torch.serialization``
    (a no-op on torch < 2.4, which loads every pickle). Idempotent."""
    global _registered
    if _registered or not hasattr(torch.serialization, 'add_safe_globals'):
        return
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
    _registered = True
