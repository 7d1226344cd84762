import logging
from typing import Dict, Optional, Union

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

from ...structures.label_store import LabelStore

DATA_BATCH = Optional[Union[dict, tuple, list]]

CKPT_KEY = 'label_store'


@HOOKS.register_module()
class LabelStoreHook(Hook):
    """Own the per-sample :class:`~mlimb_mm.structures.LabelStore` of a
    training run.

    The store lives in the main process of each rank; dataloader workers
    never see it. Other hooks and heads reach it with
    :func:`get_label_store` and write it with ``store.update(...)``; this
    hook creates it, feeds chosen fields into the data samples of every
    training batch, keeps the ranks in sync and checkpoints it.

    Note:
        - The store is created from
          ``runner.train_dataloader.dataset.get_tristate_labels()`` in
          ``before_train``, or earlier by the first :func:`get_label_store`
          call. ``RepeatDataset`` / ``ClassBalancedDataset`` wrappers are
          looked through (their samples carry the inner dataset's index);
          ``ConcatDataset`` is not supported (its ``sample_idx`` are local
          to each part).
        - ``sync()`` runs at the end of every training epoch, and every
          ``sync_interval`` iterations if set. With priority
          ``'ABOVE_NORMAL'`` it runs before NORMAL method hooks (which then
          see every rank's updates of the epoch) and before
          ``CheckpointHook``. Updates queued by a method hook after this
          sync should be followed by :func:`sync_label_store`.
        - Checkpoints get ``checkpoint['label_store']``. MMEngine saves them
          on rank 0 only, where no collective can run: pending (unsynced)
          updates at save time are saved as rank 0 sees them, with a
          warning when distributed. Epoch-based checkpoints follow the
          epoch-end sync, so they are exact; for iteration-based
          checkpoints set ``sync_interval`` to the checkpoint interval.
        - The store is restored only when the runner *resumes*
          (``resume=True``), like ``EMAHook``; ``load_from`` without resume
          loads weights only. ``Runner.train()`` loads the checkpoint before
          ``before_train``, so the state is kept and applied when the store
          is created.

    Args:
        fields (dict, optional): Fields to create with the store,
            ``dict(name=dict(dtype='float16', fill=0.))``; ``dtype`` and
            ``fill`` default to the standard field's (see
            ``mlimb_mm.structures.label_store.STANDARD_FIELDS``: ``targets``
            starts as the observed multi-hot, ``weights`` as 1, ``probs`` as
            0). A list of names uses those defaults. Defaults to None.
        inject (dict, optional): ``{store field: data-sample field}``, e.g.
            ``dict(targets='gt_score', weights='label_weight')``. Before each
            training iteration the rows of the batch's ``sample_idx`` are
            set on its data samples (floating fields as float32, others in
            their own dtype). The store fields must exist by then (create
            them with ``fields``). Defaults to None.
        sync_interval (int, optional): Also sync every ``sync_interval``
            training iterations. Defaults to None (epoch ends only).
        sync_chunk_bytes (int): Bytes each rank sends per collective in
            ``sync()``. Defaults to 64 MiB.

    Examples:
        >>> custom_hooks = [
        ...     dict(type='LabelStoreHook',
        ...          fields=dict(targets=dict(dtype='float16',
        ...                                   fill='observed')),
        ...          inject=dict(targets='gt_score'))
        ... ]
    """

    priority = 'ABOVE_NORMAL'

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
        self._resumed_state: Optional[dict] = None

    # ------------------------------------------------------------------
    # the store
    # ------------------------------------------------------------------
    @staticmethod
    def _labelled_dataset(runner):
        dataset = runner.train_dataloader.dataset
        seen = dataset
        # RepeatDataset / ClassBalancedDataset: sample_idx is the inner index
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
        """The store, created on first use from the training dataset."""
        if self.store is None:
            dataset = self._labelled_dataset(runner)
            store = LabelStore(
                dataset.get_tristate_labels(),
                sync_chunk_bytes=self.sync_chunk_bytes)
            for name, cfg in self.fields.items():
                store.add_field(name, cfg.get('dtype'), cfg.get('fill'))
            if self._resumed_state is not None:
                store.load_state_dict(self._resumed_state)
                self._resumed_state = None
            self.store = store
            print_log(store.memory_report(), 'current', logging.INFO)
        return self.store

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
        that the injected fields exist.

        Args:
            runner (Runner): The runner of the training process.
        """
        store = self.get_store(runner)
        missing = [name for name in self.inject if name not in store]
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
        """Set the ``inject`` fields of the batch's data samples from the
        store.

        Args:
            runner (Runner): The runner of the training process.
            batch_idx (int): The index of the current batch in the train loop.
            data_batch (dict, optional): Data from dataloader, with
                ``data_samples`` carrying ``metainfo['sample_idx']``.
        """
        if not self.inject or data_batch is None:
            return
        samples = data_batch.get('data_samples') if isinstance(
            data_batch, dict) else None
        if not samples:
            return
        store = self.get_store(runner)
        try:
            idx = torch.as_tensor([s.metainfo['sample_idx'] for s in samples],
                                  dtype=torch.int64)
        except KeyError:
            raise KeyError(
                'LabelStoreHook: data samples must carry '
                "metainfo['sample_idx'] (keep 'sample_idx' in the meta_keys "
                'of PackMultiLabelInputs).') from None
        for name, target in self.inject.items():
            rows = store.get(name, idx)
            if rows.dtype.is_floating_point:
                rows = rows.float()
            for sample, row in zip(samples, rows):
                sample.set_field(row, target)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Sync every ``sync_interval`` iterations, if set.

        Args:
            runner (Runner): The runner of the training process.
            batch_idx (int): The index of the current batch in the train loop.
            data_batch (dict, optional): Data from dataloader.
            outputs (dict, optional): Outputs from model.
        """
        if self.sync_interval and self.every_n_train_iters(
                runner, self.sync_interval):
            self.sync()

    def after_train_epoch(self, runner) -> None:
        """Sync the store across ranks.

        Args:
            runner (Runner): The runner of the training process.
        """
        self.sync()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Save the store as ``checkpoint['label_store']``.

        Args:
            runner (Runner): The runner of the training process.
            checkpoint (dict): Model's checkpoint.
        """
        if self.store is None:
            if self._resumed_state is not None:  # resumed, not created yet
                checkpoint[CKPT_KEY] = self._resumed_state
            return
        pending = self.store.num_pending()
        if pending and get_world_size() > 1:
            print_log(
                f'LabelStoreHook: saving with {pending} unsynced updates; '
                'the checkpoint holds the last sync plus rank 0\'s later '
                'writes only. Set `sync_interval` to the checkpoint '
                'interval for exact iteration-based checkpoints.', 'current',
                logging.WARNING)
        checkpoint[CKPT_KEY] = self.store.state_dict(allow_pending=True)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the store from ``checkpoint['label_store']`` when
        resuming (at once if it exists, else when it is created).

        Args:
            runner (Runner): The runner of the training process.
            checkpoint (dict): Model's checkpoint.
        """
        if not getattr(runner, '_resume', False):
            return  # load_from: weights only, the label state starts fresh
        state = checkpoint.get(CKPT_KEY)
        if state is None:
            print_log(
                'LabelStoreHook: the resumed checkpoint has no '
                '`label_store`; the store starts from the dataset labels.',
                'current', logging.WARNING)
            return
        if self.store is not None:
            self.store.load_state_dict(state)
        else:
            self._resumed_state = state


def _find_hook(runner) -> LabelStoreHook:
    hooks = [h for h in runner.hooks if isinstance(h, LabelStoreHook)]
    if not hooks:
        raise RuntimeError(
            'This component uses the per-sample label store and needs '
            "`dict(type='LabelStoreHook')` in custom_hooks (add `fields=` "
            'and `inject=` as the method requires).')
    if len(hooks) > 1:
        raise RuntimeError(
            f'Found {len(hooks)} LabelStoreHooks in runner.hooks; keep one.')
    return hooks[0]


def get_label_store(runner) -> LabelStore:
    """The runner's :class:`LabelStore`, created on first use.

    Raises:
        RuntimeError: when the runner has no :class:`LabelStoreHook`.
    """
    return _find_hook(runner).get_store(runner)


def sync_label_store(runner) -> None:
    """Sync the runner's label store across ranks (a collective: every rank
    must call it)."""
    _find_hook(runner).sync()
