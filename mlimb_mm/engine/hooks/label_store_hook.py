import logging
from typing import Dict, List, NamedTuple, Optional, Union

import torch
from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

from ...structures.label_store import LabelStore
from .hook_utils import data_samples_of, find_hook, sample_indices
from .stateful_hook import StatefulHook

DATA_BATCH = Optional[Union[dict, tuple, list]]

CKPT_KEY = 'label_store'
INJECT_MODES = ('replace', 'multiply')


class StoreField(NamedTuple):
    """A label-store field a hook needs, and how it enters each batch.

    Method hooks declare what they need by returning these from a
    ``label_store_fields()`` method; :class:`LabelStoreHook` creates the
    fields and injects them, so configs only write
    ``dict(type='LabelStoreHook')``.

    Args:
        name (str): Store field.
        dtype (str | torch.dtype, optional): Its dtype (the standard field's
            when None, see ``LabelStore.add_field``).
        fill (float | str, optional): Its initial value.
        inject (str, optional): Data-sample field to set from its rows
            before every training iteration (e.g. ``'label_weight'``).
        mode (str): ``'replace'`` sets the data-sample field; ``'multiply'``
            multiplies it in (ones when absent). Replacements come first.
    """
    name: str
    dtype: Optional[Union[str, torch.dtype]] = None
    fill: Optional[Union[float, str]] = None
    inject: Optional[str] = None
    mode: str = 'replace'


def _requests_of(hook) -> List[StoreField]:
    request = getattr(hook, 'label_store_fields', None)
    return list(request()) if callable(request) else []


@HOOKS.register_module()
class LabelStoreHook(StatefulHook):
    """Own the per-sample :class:`~mlimb_mm.structures.LabelStore` of a
    training run: create it, put its fields into every training batch, keep
    the ranks in sync and checkpoint it.

    The store lives in the main process of each rank (dataloader workers
    never see it) and is created from the training dataset's
    ``get_tristate_labels()`` (``RepeatDataset`` / ``ClassBalancedDataset``
    looked through; ``ConcatDataset`` is not supported). The fields and
    injections come from the other hooks' ``label_store_fields()``
    (:class:`StoreField`) and from ``fields`` / ``inject`` here. Before each
    training iteration the rows of the batch's ``sample_idx`` are set on
    its data samples (floating fields as float32): replacements first, then
    multiplications in hook order.

    ``sync()`` runs at every epoch end (and every ``sync_interval``
    iterations if set), before NORMAL method hooks and ``CheckpointHook``
    (priority ``'ABOVE_NORMAL'``). Checkpoints hold
    ``checkpoint['label_store']``, restored when resuming; MMEngine saves on
    rank 0 only, so unsynced updates at save time are saved as rank 0 sees
    them (set ``sync_interval`` to the checkpoint interval for exact
    iteration-based checkpoints).

    Args:
        fields (dict | list, optional): More fields to create,
            ``dict(name=dict(dtype='float16', fill=0.))`` or a list of names
            (the standard fields' defaults). Defaults to None.
        inject (dict, optional): More ``{store field: data-sample field}``
            replacements, e.g. ``dict(targets='gt_score')``. Defaults to
            None.
        sync_interval (int, optional): Also sync every ``sync_interval``
            training iterations. Defaults to None (epoch ends only).
        sync_chunk_bytes (int): Bytes each rank sends per collective in
            ``sync()``. Defaults to 64 MiB.

    Examples:
        >>> custom_hooks = [dict(type='LabelStoreHook'),
        ...                 dict(type='PLMHook')]  # PLM asks for its masks
    """

    priority = 'ABOVE_NORMAL'
    ckpt_key = CKPT_KEY

    def __init__(self,
                 fields: Union[Dict[str, dict], list, tuple, None] = None,
                 inject: Optional[Dict[str, str]] = None,
                 sync_interval: Optional[int] = None,
                 sync_chunk_bytes: int = 64 << 20):
        if fields is None:
            fields = {}
        elif isinstance(fields, (list, tuple)):
            fields = {name: {} for name in fields}
        if not isinstance(fields, dict) or not all(
                isinstance(v, dict) and set(v) <= {'dtype', 'fill'}
                for v in fields.values()):
            raise TypeError(
                'LabelStoreHook: `fields` must be a list of names or a dict '
                f'name -> dict(dtype=..., fill=...), got {fields!r}.')
        if inject is not None and not (isinstance(inject, dict) and all(
                isinstance(k, str) and isinstance(v, str)
                for k, v in inject.items())):
            raise TypeError(
                'LabelStoreHook: `inject` must map store field names to '
                f'data-sample field names, got {inject!r}.')
        if sync_interval is not None and sync_interval < 1:
            raise ValueError('LabelStoreHook: `sync_interval` must be a '
                             f'positive int or None, got {sync_interval}.')
        self.fields = dict(fields)
        self.inject = dict(inject or {})
        self.sync_interval = sync_interval
        self.sync_chunk_bytes = sync_chunk_bytes
        self.store: Optional[LabelStore] = None
        self.injections: List[StoreField] = []
        self._resumed_state: Optional[dict] = None

    def label_store_fields(self) -> List[StoreField]:
        """The fields and replacements given to this hook's constructor."""
        requests = [StoreField(name, cfg.get('dtype'), cfg.get('fill'))
                    for name, cfg in self.fields.items()]
        return requests + [StoreField(name, inject=key)
                           for name, key in self.inject.items()]

    # ------------------------------------------------------------------
    # the store
    # ------------------------------------------------------------------
    @staticmethod
    def labelled_dataset(runner):
        """The training dataset whose ``get_tristate_labels()`` the store
        holds (wrappers that keep the inner ``sample_idx`` looked through).
        """
        dataset = runner.train_dataloader.dataset
        seen = dataset
        while not hasattr(seen, 'get_tristate_labels') and hasattr(
                seen, 'dataset') and not hasattr(seen, 'datasets'):
            seen = seen.dataset
        if not hasattr(seen, 'get_tristate_labels'):
            raise TypeError(
                'LabelStoreHook: the training dataset '
                f'{type(dataset).__name__} has no get_tristate_labels() '
                '(implemented by mlimb_mm datasets, see '
                'mlimb_mm.datasets.BaseMultiLabelDataset); the label store '
                'needs the (N, K) tri-state labels indexed by sample_idx.')
        return seen

    def get_store(self, runner) -> LabelStore:
        """The store, created on first use from the training dataset with
        the fields every hook of the run asks for."""
        if self.store is None:
            dataset = self.labelled_dataset(runner)
            store = LabelStore(
                dataset.get_tristate_labels(),
                sync_chunk_bytes=self.sync_chunk_bytes)
            requests, created = self._collect_requests(runner)
            for name, (dtype, fill) in created.items():
                store.add_field(name, dtype, fill)
            self.injections = [r for r in requests if r.inject is not None]
            self.store = store
            self.restore_resumed_state()
            print_log(store.memory_report(), 'current', logging.INFO)
        return self.store

    def _collect_requests(self, runner):
        """Every hook's requests, checked for conflicts and de-duplicated
        (replacements before multiplications), and the fields to create,
        ``{name: (dtype, fill)}``: all but ``observed`` and the fields only
        named in this hook's ``inject`` (created elsewhere)."""
        typed: Dict[str, tuple] = {}
        replaced: Dict[str, tuple] = {}
        requests, created = [], []
        for hook in [self] + [h for h in runner.hooks if h is not self]:
            who = type(hook).__name__
            for request in _requests_of(hook):
                request = StoreField(*request)
                _check_request(request, who, typed, replaced)
                if hook is not self or request.inject is None:
                    created.append(request.name)
                if request not in requests:
                    requests.append(request)
        requests.sort(key=lambda r: r.mode != 'replace')
        return requests, {
            name: typed.get(name, ((None, None), ))[0]
            for name in created if name != LabelStore.OBSERVED
        }

    def sync(self, runner=None) -> None:
        """Sync the store across ranks (a collective; no-op without a
        store)."""
        if self.store is not None:
            self.store.sync()

    # ------------------------------------------------------------------
    # hook points
    # ------------------------------------------------------------------
    def before_train(self, runner) -> None:
        """Create the store (applying a resumed state, if any) and check
        that the injected fields exist."""
        store = self.get_store(runner)
        missing = [r.name for r in self.injections if r.name not in store]
        if missing:
            print_log(
                f'LabelStoreHook: inject fields {missing} do not exist yet; '
                'they must be created (LabelStoreHook(fields=...) or '
                'add_field) before the first training iteration.', 'current',
                logging.WARNING)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Set or multiply the injected fields into the batch's data
        samples."""
        samples = data_samples_of(data_batch)
        if not samples or (self.store is None and not self.inject):
            return
        store = self.get_store(runner)
        if not self.injections:
            return
        idx = sample_indices(samples, 'LabelStoreHook')
        for request in self.injections:
            rows = store.get(request.name, idx)
            if rows.dtype.is_floating_point:
                rows = rows.float()
            for sample, row in zip(samples, rows):
                if request.mode == 'multiply' and request.inject in sample:
                    old = sample.get(request.inject)
                    row = old * row.to(device=old.device, dtype=old.dtype)
                elif request.mode == 'multiply':
                    row = row.float()
                sample.set_field(row, request.inject)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Sync every ``sync_interval`` iterations, if set."""
        if self.sync_interval and self.every_n_train_iters(
                runner, self.sync_interval):
            self.sync()

    def after_train_epoch(self, runner) -> None:
        """Sync the store across ranks."""
        self.sync()

    # ------------------------------------------------------------------
    # checkpointing (StatefulHook)
    # ------------------------------------------------------------------
    def is_set_up(self) -> bool:
        return self.store is not None

    def state_dict(self) -> dict:
        pending = self.store.num_pending()
        if pending and get_world_size() > 1:
            print_log(
                f'LabelStoreHook: saving with {pending} unsynced updates; '
                'the checkpoint holds the last sync plus rank 0\'s later '
                'writes only. Set `sync_interval` to the checkpoint '
                'interval for exact iteration-based checkpoints.', 'current',
                logging.WARNING)
        return self.store.state_dict(allow_pending=True)

    def apply_state(self, state: dict) -> None:
        self.store.load_state_dict(state)


def _check_request(request: StoreField, who: str, typed: dict,
                   replaced: dict) -> None:
    """Refuse an unknown inject mode, a field asked for with two (dtype,
    fill), and a data-sample field replaced from two store fields
    (``typed`` / ``replaced`` hold what earlier requests asked)."""
    if request.mode not in INJECT_MODES:
        raise ValueError(
            f'{who}: label-store field {request.name!r} has inject mode '
            f'{request.mode!r}; expected one of {INJECT_MODES}.')
    dtype_fill = (request.dtype, request.fill)
    if dtype_fill != (None, None):
        held = typed.setdefault(request.name, (dtype_fill, who))
        if held[0] != dtype_fill:
            raise ValueError(
                f'LabelStoreHook: {who} asks for field {request.name!r} as '
                f'(dtype, fill) {dtype_fill}, {held[1]} as {held[0]}.')
    if request.inject and request.mode == 'replace':
        held = replaced.setdefault(request.inject, (request.name, who))
        if held[0] != request.name:
            raise ValueError(
                f'LabelStoreHook: {who} replaces the data-sample field '
                f'{request.inject!r} with store field {request.name!r}, '
                f'{held[1]} with {held[0]!r}; only one field can replace it.')


def get_label_store_hook(runner) -> LabelStoreHook:
    """The runner's :class:`LabelStoreHook` (an error naming the config line
    to add when there is none)."""
    return find_hook(
        runner, LabelStoreHook, 'This component uses the per-sample label '
        'store and', "dict(type='LabelStoreHook')")


def get_label_store(runner) -> LabelStore:
    """The runner's :class:`LabelStore`, created on first use.

    Raises:
        RuntimeError: when the runner has no :class:`LabelStoreHook`.
    """
    return get_label_store_hook(runner).get_store(runner)


def sync_label_store(runner) -> None:
    """Sync the runner's label store across ranks (a collective: every rank
    must call it)."""
    get_label_store_hook(runner).sync()
