"""Per-sample, per-class label state shared by label-refinement methods.

Memory per label of each field, the figures at COCO and Open Images scale
and the plan for larger data are in ``docs/label_store.md``.
"""
import math
import warnings
from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch
from mmengine import dist

__all__ = ['LabelStore']

IndexType = Union[int, Sequence[int], np.ndarray, torch.Tensor]

#: Defaults used by :meth:`LabelStore.add_field` for the standard fields:
#: ``(dtype, fill)``. ``'observed'`` as a fill means "the multi-hot of the
#: observed labels" (1 for positives, 0 for negatives and unknowns), i.e.
#: exactly the ``gt_score`` the datasets produce.
STANDARD_FIELDS = {
    'targets': (torch.float16, 'observed'),
    'weights': (torch.float16, 1.),
    'probs': (torch.float16, 0.),
}

_STATE_VERSION = 1


def _to_dtype(dtype) -> torch.dtype:
    """``torch.float16``, ``'float16'`` or ``'torch.float16'`` -> dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str):
        name = dtype[6:] if dtype.startswith('torch.') else dtype
        value = getattr(torch, name, None)
        if isinstance(value, torch.dtype):
            return value
    raise TypeError(f'LabelStore: {dtype!r} is not a torch dtype.')


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace('torch.', '')


class LabelStore:
    """Per-sample, per-class label state keyed by dataset index.

    Holds named ``(N, K)`` CPU tensors, each with its own dtype. The
    read-only ``observed`` field (int8: 1 positive, 0 negative, -1 unknown)
    always exists; the standard working fields ``targets``, ``weights`` and
    ``probs`` (float16, see :data:`STANDARD_FIELDS` for their fills) and any
    others are created on request with :meth:`add_field`. Memory figures
    and the plan at Open Images scale: ``docs/label_store.md``.

    Devices: the fields stay on the CPU (they are as large as the dataset's
    labels) while the model may be on a GPU: indices and values may be on
    any device, and ``get(name, idx, device)`` hands the rows to a
    consumer's device.

    Distributed use: every rank holds a full copy. :meth:`update` writes the
    local copy at once (a rank reads its own writes) and marks the rows as
    pending; :meth:`sync`, a collective that every rank must call, sends the
    pending rows to all ranks so that all copies are identical again. When
    two ranks wrote the same sample since the last sync (DistributedSampler
    pads the last batch with repeated samples) the higher rank wins, on every
    rank; within one rank the last write wins. :meth:`set_all` is for
    full-set updates computed identically on every rank and is not queued.

    Args:
        observed (Tensor | np.ndarray): ``(N, K)`` tri-state labels. A
            contiguous int8 numpy array is wrapped without a copy.
        sync_chunk_bytes (int): Upper bound on the bytes each rank sends per
            collective in :meth:`sync`. Defaults to 64 MiB.

    Examples:
        >>> store = LabelStore(np.array([[1, 0, -1], [0, -1, 1]], np.int8))
        >>> store.add_field('probs')
        >>> store.update('probs', [1], torch.tensor([[.1, .2, .9]]))
        >>> store.sync()
        >>> store.get('probs', [1, 0]).shape
        torch.Size([2, 3])
    """

    OBSERVED = 'observed'

    def __init__(self,
                 observed: Union[torch.Tensor, np.ndarray],
                 sync_chunk_bytes: int = 64 << 20):
        if isinstance(observed, np.ndarray):
            if observed.dtype != np.int8 or not observed.flags.writeable:
                observed = np.array(observed, dtype=np.int8)
            observed = torch.from_numpy(np.ascontiguousarray(observed))
        elif isinstance(observed, torch.Tensor):
            observed = observed.detach().to('cpu', torch.int8).contiguous()
        else:
            raise TypeError('LabelStore: `observed` must be an (N, K) tensor '
                            f'or numpy array, got {type(observed)}.')
        if observed.dim() != 2:
            raise ValueError('LabelStore: `observed` must have shape (N, K), '
                             f'got {tuple(observed.shape)}.')
        if observed.numel() and (observed.min() < -1 or observed.max() > 1):
            raise ValueError('LabelStore: `observed` must hold only -1 '
                             '(unknown), 0 (negative) and 1 (positive).')
        self.sync_chunk_bytes = int(sync_chunk_bytes)
        self._data: Dict[str, torch.Tensor] = {self.OBSERVED: observed}
        # field -> (N,) bool mask of rows written since the last sync
        self._dirty: Dict[str, torch.Tensor] = {}
        self._observed_stats: Optional[torch.Tensor] = None

    # ------------------------------------------------------------------
    # basic properties
    # ------------------------------------------------------------------
    @property
    def num_samples(self) -> int:
        """N, the number of samples (dataset size)."""
        return self._data[self.OBSERVED].shape[0]

    @property
    def num_classes(self) -> int:
        """K, the number of classes."""
        return self._data[self.OBSERVED].shape[1]

    @property
    def shape(self) -> tuple:
        return (self.num_samples, self.num_classes)

    @property
    def fields(self) -> Dict[str, torch.dtype]:
        """``{name: dtype}`` of the existing fields, ``observed`` first."""
        return {name: t.dtype for name, t in self._data.items()}

    def __contains__(self, name: str) -> bool:
        return name in self._data

    def __getitem__(self, name: str) -> torch.Tensor:
        """The full ``(N, K)`` tensor of a field (not a copy: read only;
        writing it bypasses :meth:`sync`)."""
        return self._field(name, 'getitem')

    def __repr__(self) -> str:
        fields = ', '.join(f'{n}:{_dtype_name(d)}'
                           for n, d in self.fields.items())
        return (f'{self.__class__.__name__}(num_samples={self.num_samples}, '
                f'num_classes={self.num_classes}, fields=[{fields}], '
                f'pending={self.num_pending()})')

    # ------------------------------------------------------------------
    # fields
    # ------------------------------------------------------------------
    def add_field(self,
                  name: str,
                  dtype: Union[torch.dtype, str, None] = None,
                  fill: Union[float, int, str, None] = None) -> torch.Tensor:
        """Create an ``(N, K)`` field, or return it if it already exists.

        Args:
            name (str): Field name (``targets``, ``weights``, ``probs`` or
                any other identifier).
            dtype (torch.dtype | str, optional): e.g. ``torch.float16`` or
                ``'uint8'``. Defaults to the standard field's dtype
                (:data:`STANDARD_FIELDS`), else float16.
            fill (float | str, optional): Initial value, or ``'observed'``
                for the multi-hot of the observed labels (1 for positives,
                0 for negatives and unknowns, like ``gt_score``). Defaults to
                the standard field's fill, else 0.

        Returns:
            Tensor: the field.

        Raises:
            ValueError: when the field exists with another dtype.
        """
        std_dtype, std_fill = STANDARD_FIELDS.get(name, (torch.float16, 0.))
        dtype = std_dtype if dtype is None else _to_dtype(dtype)
        fill = std_fill if fill is None else fill
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f'LabelStore: field name {name!r} must be an identifier.')
        if name in self._data:
            if self._data[name].dtype != dtype:
                raise ValueError(
                    f'LabelStore: field {name!r} already exists with dtype '
                    f'{_dtype_name(self._data[name].dtype)}, asked for '
                    f'{_dtype_name(dtype)}.')
            return self._data[name]
        if isinstance(fill, str):
            if fill != 'observed':
                raise ValueError(
                    f'LabelStore: fill {fill!r} of field {name!r} must be a '
                    "number or 'observed'.")
            tensor = torch.empty(self.shape, dtype=dtype)
            # chunked so the temporary bool mask stays small at OI scale
            step = max(1, (64 << 20) // max(1, self.num_classes))
            obs = self._data[self.OBSERVED]
            for s in range(0, self.num_samples, step):
                tensor[s:s + step] = obs[s:s + step] == 1
        else:
            if isinstance(fill, float) and math.isnan(fill):
                raise ValueError(
                    f'LabelStore: fill of field {name!r} is NaN.')
            tensor = torch.full(self.shape, fill, dtype=dtype)
        self._data[name] = tensor
        return tensor

    def _field(self, name: str, op: str, writable: bool = False):
        if name not in self._data:
            raise KeyError(
                f'LabelStore.{op}: no field {name!r}; existing fields: '
                f'{list(self._data)}. Create it with add_field({name!r}, ...) '
                "or LabelStoreHook(fields=...).")
        if writable and name == self.OBSERVED:
            raise ValueError(
                f'LabelStore.{op}: field {self.OBSERVED!r} is read-only '
                "(the dataset's labels); write a working field such as "
                "'targets' instead.")
        return self._data[name]

    def _index(self, name: str, sample_idx: IndexType, op: str):
        """Validated 1-D int64 CPU index tensor."""
        if isinstance(sample_idx, torch.Tensor):
            idx = sample_idx.detach().to('cpu')
        else:
            idx = torch.as_tensor(np.asarray(sample_idx))
        if idx.dim() == 0:
            idx = idx.reshape(1)
        if idx.dim() != 1 or (idx.numel() and (idx.dtype.is_floating_point
                                               or idx.dtype.is_complex
                                               or idx.dtype == torch.bool)):
            raise TypeError(
                f'LabelStore.{op}({name!r}): sample_idx must be a 1-D '
                f'sequence of integers, got dtype {idx.dtype} and shape '
                f'{tuple(idx.shape)}.')
        idx = idx.to(torch.int64)
        if idx.numel():
            bad = (idx < 0) | (idx >= self.num_samples)
            if bad.any():
                raise IndexError(
                    f'LabelStore.{op}({name!r}): sample index '
                    f'{int(idx[bad][0])} is out of range [0, '
                    f'{self.num_samples}) ({int(bad.sum())} bad indices).')
        return idx

    # ------------------------------------------------------------------
    # reading / writing
    # ------------------------------------------------------------------
    def get(self,
            name: str,
            sample_idx: IndexType,
            device: Union[str, torch.device, None] = None) -> torch.Tensor:
        """Rows ``sample_idx`` of field ``name``: a new ``(B, K)`` tensor in
        the field's dtype (on ``device`` if given)."""
        data = self._field(name, 'get')
        rows = data[self._index(name, sample_idx, 'get')]
        return rows if device is None else rows.to(device)

    def update(self, name: str, sample_idx: IndexType,
               values: Union[torch.Tensor, np.ndarray]) -> None:
        """Write rows ``sample_idx`` of field ``name`` and queue them for
        :meth:`sync`.

        Args:
            name (str): An existing field other than ``observed``.
            sample_idx (int | sequence | Tensor): B dataset indices. Repeated
                indices: the last occurrence wins.
            values (Tensor | np.ndarray): ``(B, K)``, cast to the field's
                dtype (any device; copied to CPU). NaN is refused, and so is
                a finite value that overflows the dtype (e.g. > 65504 for
                float16).
        """
        data = self._field(name, 'update', writable=True)
        idx = self._index(name, sample_idx, 'update')
        values = torch.as_tensor(values).detach().to('cpu')
        if values.shape != (idx.numel(), self.num_classes):
            raise ValueError(
                f'LabelStore.update({name!r}): values must have shape '
                f'({idx.numel()}, {self.num_classes}) for {idx.numel()} '
                f'sample indices, got {tuple(values.shape)}.')
        cast = self._checked_cast(name, values, data.dtype, 'update')
        if idx.numel() == 0:
            return
        if idx.numel() > 1:
            uniq, inverse = torch.unique(idx, return_inverse=True)
            if uniq.numel() < idx.numel():  # keep the last occurrence
                pos = torch.arange(idx.numel())
                last = torch.full((uniq.numel(), ), -1, dtype=torch.int64)
                last = last.scatter_reduce(0, inverse, pos, 'amax')
                idx, cast = uniq, cast[last]
        data[idx] = cast
        dirty = self._dirty.get(name)
        if dirty is None:
            dirty = self._dirty[name] = torch.zeros(
                self.num_samples, dtype=torch.bool)
        dirty[idx] = True

    def set_all(self, name: str, values: Union[torch.Tensor,
                                               np.ndarray]) -> None:
        """Replace the whole ``(N, K)`` field ``name`` (creating it if
        needed, with ``values``' dtype for non-standard fields).

        Not queued: call it on every rank with values computed identically
        on every rank (e.g. from synced ``probs``). Pending updates of this
        field are discarded.
        """
        if name == self.OBSERVED:
            self._field(name, 'set_all', writable=True)
        values = torch.as_tensor(values).detach().to('cpu')
        if values.shape != self.shape:
            raise ValueError(
                f'LabelStore.set_all({name!r}): values must have shape '
                f'{self.shape}, got {tuple(values.shape)}.')
        if name not in self._data:
            dtype = STANDARD_FIELDS[name][0] if name in STANDARD_FIELDS \
                else values.dtype
            self.add_field(name, dtype, fill=0)
        data = self._data[name]
        data.copy_(self._checked_cast(name, values, data.dtype, 'set_all'))
        self._dirty.pop(name, None)

    def _checked_cast(self, name, values, dtype, op):
        if values.dtype.is_floating_point and torch.isnan(values).any():
            raise ValueError(
                f'LabelStore.{op}({name!r}): values contain NaN.')
        cast = values.to(dtype)
        if dtype.is_floating_point and values.dtype.is_floating_point:
            overflow = torch.isinf(cast) & torch.isfinite(values)
            if overflow.any():
                raise ValueError(
                    f'LabelStore.{op}({name!r}): value '
                    f'{float(values[overflow][0])} overflows '
                    f'{_dtype_name(dtype)}.')
        return cast

    # ------------------------------------------------------------------
    # synchronisation
    # ------------------------------------------------------------------
    def num_pending(self, name: Optional[str] = None) -> int:
        """Number of rows written since the last :meth:`sync` (of one field,
        or summed over fields)."""
        names = [name] if name is not None else list(self._dirty)
        return sum(
            int(self._dirty[n].sum()) for n in names if n in self._dirty)

    def sync(self, group=None) -> None:
        """Make every rank's copy identical; a collective.

        Every rank must call it (with the same fields). The ranks exchange
        the indices of their pending rows, drop rows that a higher rank also
        wrote (the higher rank wins), then exchange the remaining rows in
        chunks of at most :attr:`sync_chunk_bytes` per rank. Cost is
        proportional to the number of pending rows (plus a scan of an
        ``(N,)`` mask per updated field), not to N x K. Works with any
        backend (gloo on CPU, NCCL: ``mmengine.dist`` moves the buffers).
        Non-distributed: just clears the queue (the writes are local).
        """
        world_size = dist.get_world_size(group)
        if world_size == 1:
            self._dirty.clear()
            return
        rank = dist.get_rank(group)
        pending = {
            name: self._dirty[name].nonzero().flatten()
            if name in self._dirty else torch.zeros(0, dtype=torch.int64)
            for name in self._data if name != self.OBSERVED
        }
        meta = {
            name: (_dtype_name(self._data[name].dtype), idx.numel())
            for name, idx in pending.items()
        }
        metas = dist.all_gather_object(meta, group)
        layouts = [{n: m[0] for n, m in rank_meta.items()}
                   for rank_meta in metas]
        if any(lay != layouts[0] for lay in layouts):
            raise RuntimeError(
                'LabelStore.sync: the ranks hold different fields or dtypes '
                f'({dict(enumerate(layouts))}); every rank must create the '
                'same fields before syncing.')
        for name in sorted(pending):
            counts = [rank_meta[name][1] for rank_meta in metas]
            if sum(counts) == 0:
                continue
            self._sync_field(name, pending[name], counts, rank, world_size,
                             group)
        self._dirty.clear()

    def _sync_field(self, name, idx, counts, rank, world_size, group):
        data = self._data[name]
        # 1. everyone's pending indices (sorted ascending, unique per rank)
        width = max(counts)
        buf = torch.full((width, ), -1, dtype=torch.int64)
        buf[:idx.numel()] = idx
        gathered = dist.all_gather(buf, group)
        all_idx = [g.to('cpu')[:c] for g, c in zip(gathered, counts)]
        # 2. the rows each rank sends: those no higher rank also wrote
        kept = [None] * world_size
        higher = torch.zeros(0, dtype=torch.int64)
        for r in reversed(range(world_size)):
            i = all_idx[r]
            kept[r] = i[~torch.isin(i, higher)] if higher.numel() else i
            higher = torch.cat([higher, i])
        # 3. the rows, as raw bytes (any dtype, incl. bool/float16 on gloo)
        row_bytes = self.num_classes * data.element_size()
        if row_bytes == 0:
            return
        per_chunk = max(1, self.sync_chunk_bytes // row_bytes)
        longest = max(k.numel() for k in kept)
        for start in range(0, longest, per_chunk):
            sizes = [
                max(0, min(per_chunk,
                           k.numel() - start)) for k in kept
            ]
            width = max(sizes)
            send = torch.zeros((width, row_bytes), dtype=torch.uint8)
            if sizes[rank]:
                rows = data[kept[rank][start:start + sizes[rank]]]
                send[:sizes[rank]] = rows.view(torch.uint8).reshape(
                    sizes[rank], row_bytes)
            received = dist.all_gather(send, group)
            for r in range(world_size):
                if r == rank or not sizes[r]:
                    continue
                rows = received[r].to('cpu')[:sizes[r]].contiguous()
                data[kept[r][start:start + sizes[r]]] = rows.view(
                    data.dtype).reshape(sizes[r], self.num_classes)

    # ------------------------------------------------------------------
    # checkpointing
    # ------------------------------------------------------------------
    def _stats(self) -> torch.Tensor:
        """``(2, K)`` int64: positives and unknowns per class of
        ``observed``; a cheap fingerprint stored in checkpoints instead of
        ``observed`` itself (computed once: ``observed`` is read-only)."""
        if self._observed_stats is None:
            obs = self._data[self.OBSERVED]
            stats = torch.zeros((2, self.num_classes), dtype=torch.int64)
            step = max(1, (64 << 20) // max(1, self.num_classes))
            for s in range(0, self.num_samples, step):
                chunk = obs[s:s + step]
                stats[0] += (chunk == 1).sum(0)
                stats[1] += (chunk == -1).sum(0)
            self._observed_stats = stats
        return self._observed_stats

    def state_dict(self, allow_pending: bool = False) -> dict:
        """A plain dict of CPU tensors, ints and strings (loadable with
        ``torch.load(weights_only=True)``).

        ``observed`` is not saved (it is the dataset's); a per-class count of
        its positives and unknowns is, to detect a different label file.

        Pending updates: when not distributed they are applied first (a
        local no-op). When distributed, :meth:`sync` is a collective and
        this method may run on rank 0 only (MMEngine saves checkpoints on
        rank 0), so it raises unless ``allow_pending=True``, which saves
        this rank's view (the last sync plus this rank's own later writes).
        """
        if self.num_pending():
            if dist.get_world_size() == 1:
                self.sync()
            elif not allow_pending:
                raise RuntimeError(
                    f'LabelStore.state_dict: {self.num_pending()} updates '
                    'are not synced yet; call sync() on every rank first, '
                    'or pass allow_pending=True to save this rank\'s view.')
        return dict(
            version=_STATE_VERSION,
            num_samples=self.num_samples,
            num_classes=self.num_classes,
            observed_stats=self._stats().clone(),
            fields={
                name: t.clone()
                for name, t in self._data.items() if name != self.OBSERVED
            },
            dtypes={
                name: _dtype_name(t.dtype)
                for name, t in self._data.items() if name != self.OBSERVED
            })

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the fields of :meth:`state_dict`; pending updates are
        discarded. Fields missing here are created with the saved dtype; an
        existing field with another dtype keeps its dtype (with a warning).

        Raises:
            ValueError: when N or K of the saved store differ.
        """
        saved = (int(state_dict['num_samples']),
                 int(state_dict['num_classes']))
        if saved != self.shape:
            raise ValueError(
                'LabelStore.load_state_dict: the saved store has shape '
                f'(N, K) = {saved}, this one {self.shape}; it belongs to '
                'another dataset or class list.')
        stats = state_dict.get('observed_stats')
        if stats is not None and not torch.equal(
                torch.as_tensor(stats).cpu(), self._stats()):
            warnings.warn(
                'LabelStore.load_state_dict: the observed labels differ from '
                'those of the saved store (same shape, different per-class '
                'counts); loading anyway.')
        dtypes = state_dict.get('dtypes', {})
        for name, tensor in state_dict['fields'].items():
            tensor = torch.as_tensor(tensor).to('cpu')
            if tuple(tensor.shape) != self.shape:
                raise ValueError(
                    f'LabelStore.load_state_dict: field {name!r} has shape '
                    f'{tuple(tensor.shape)}, expected {self.shape}.')
            dtype = _to_dtype(dtypes.get(name, tensor.dtype))
            if name not in self._data:
                self.add_field(name, dtype, fill=0)
            elif self._data[name].dtype != dtype:
                warnings.warn(
                    f'LabelStore.load_state_dict: field {name!r} was saved '
                    f'as {_dtype_name(dtype)}, is '
                    f'{_dtype_name(self._data[name].dtype)} here; casting.')
            self._data[name].copy_(tensor)
        self._dirty.clear()

    # ------------------------------------------------------------------
    # memory
    # ------------------------------------------------------------------
    def nbytes(self) -> int:
        """Bytes held: all fields (``observed`` included, even when shared
        with the dataset) plus the pending-update masks."""
        return sum(t.numel() * t.element_size()
                   for t in self._data.values()) + sum(
                       m.numel() for m in self._dirty.values())

    def memory_report(self) -> str:
        """A human-readable table of the memory per field."""
        labels = self.num_samples * self.num_classes
        lines = [
            f'LabelStore: {self.num_samples} samples x {self.num_classes} '
            f'classes = {labels} labels'
        ]
        for name, t in self._data.items():
            size = t.numel() * t.element_size()
            lines.append(f'  {name:<12} {_dtype_name(t.dtype):<8} '
                         f'{t.element_size()} B/label  {size / 1e6:10.2f} MB')
        masks = sum(m.numel() for m in self._dirty.values())
        if masks:
            lines.append(f'  {"(pending)":<12} {"bool":<8} 1 B/sample '
                         f'{masks / 1e6:10.2f} MB')
        lines.append(f'  total {self.nbytes() / 1e6:.2f} MB')
        return '\n'.join(lines)
