import logging
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine import dist
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...datasets.label_utils import long_tail_groups
from ...models.utils.comic import correction_quality
from .hook_utils import (clean_labels_of, data_samples_of, format_vector,
                         jsonable, sample_indices, write_json_history)
from .label_store_hook import (StoreField, get_label_store,
                               get_label_store_hook)
from .stateful_hook import StatefulHook

HISTORY_JSON = 'label_corrections.json'
_STATE_VERSION = 1


def find_correction_losses(model, who: str) -> List[Tuple[str, object]]:
    """``(name, module)`` of the model's label-correcting losses (modules
    with ``pop_corrections``); raises, naming ``who``, when there are
    none."""
    if is_model_wrapper(model):
        model = model.module
    found = [(name, m) for name, m in model.named_modules()
             if callable(getattr(m, 'pop_corrections', None))
             and callable(getattr(m, 'reset_epoch_corrections', None))]
    if not found:
        raise TypeError(
            f'{who} needs a ReflectiveLabelCorrectionLoss in the model (as '
            'the loss of COMICHead, or of TriStateLinearClsHead with '
            'pass_tristate=True); found none.')
    return found


@HOOKS.register_module()
class ReflectiveLabelCorrectionHook(StatefulHook):
    """Bookkeeping of COMIC's Reflective Label Corrector (Zhang et al., ICCV
    2023, Eq. (2)-(3)) around every ``ReflectiveLabelCorrectionLoss`` of
    the model.

    - ``before_train_epoch``: restarts each loss's dynamic class
      distribution from the training set's counts (Table 5's "dynamic":
      ``n_k`` plus the corrections of the current epoch).
    - ``after_train_iter``: reads the step's corrections from the losses
      and marks them in the label store (field ``field``, int16: the last
      epoch, 1-based, in which the label was corrected; 0 never); counts
      them per loss and, where the dataset keeps its clean labels
      (``get_clean_tristate_labels()``, e.g. ``MissingLabelDataset``),
      the true and false ones.
    - ``after_train_epoch`` (after the store's sync): per epoch, the
      corrections per loss, the labels corrected in the epoch, their
      precision against the clean labels and the recall of the missing
      positives, overall and per class group (many / medium / few); a
      summary in the log, everything in ``log_dir/label_corrections.json``
      and the checkpoint.

    The corrections themselves never change the dataset nor the store's
    observed labels. Needs ``dict(type='LabelStoreHook')``.

    Args:
        field (str): Label-store field of the marks. Defaults to
            ``'rlc_corrected_epoch'``.
        group_thresholds (tuple): ``(low, high)`` training counts of the
            class groups. Defaults to (20, 100).
    """

    priority = 'NORMAL'
    ckpt_key = 'label_correction'

    def __init__(self, field: str = 'rlc_corrected_epoch',
                 group_thresholds: Tuple[int, int] = (20, 100)):
        self.field = field
        self.group_thresholds = tuple(group_thresholds)
        self.history: List[dict] = []
        self._losses: Optional[List[Tuple[str, object]]] = None
        self._clean: Optional[torch.Tensor] = None
        self._groups: Dict[str, np.ndarray] = {}
        self._counts: Optional[Dict[str, torch.Tensor]] = None
        self._classes: Optional[List[str]] = None
        self._resumed_state: Optional[dict] = None

    def label_store_fields(self) -> List[StoreField]:
        return [StoreField(self.field, 'int16', 0)]

    def before_train(self, runner) -> None:
        self._losses = find_correction_losses(runner.model,
                                              type(self).__name__)
        for _, loss in self._losses:
            loss.enable_correction_records()
        store = get_label_store(runner)
        dataset = get_label_store_hook(runner).labelled_dataset(runner)
        clean = clean_labels_of(dataset)
        if clean is not None:
            clean = torch.as_tensor(clean.astype(np.int8, copy=False))
            if tuple(clean.shape) != store.shape:
                raise ValueError(
                    f'{type(self).__name__}: clean labels of shape '
                    f'{tuple(clean.shape)}, the store holds {store.shape}.')
        self._clean = clean
        full = clean if clean is not None else store['observed']
        self._groups = long_tail_groups((full == 1).sum(0).numpy(),
                                        self.group_thresholds)
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        self._classes = [str(c) for c in classes] if classes else None
        self.restore_resumed_state()

    def after_train(self, runner) -> None:
        for _, loss in self._losses or []:
            loss.disable_correction_records()

    # ------------------------------------------------------------------
    def before_train_epoch(self, runner) -> None:
        store = get_label_store(runner)
        num_classes = store.num_classes
        self._counts = {
            key: torch.zeros(num_classes, dtype=torch.int64)
            for key in ['true', 'false'] + [n for n, _ in self._losses]
        }
        for _, loss in self._losses:
            loss.reset_epoch_corrections()
            loss.pop_corrections()
        # marks of this epoch from an interrupted run are made again
        marks = store[self.field]
        stale = marks == runner.epoch + 1
        if stale.any():
            store.set_all(self.field, torch.where(stale, 0, marks))

    def record(self, store, name: str, sample_idx: torch.Tensor,
               corrected: torch.Tensor, epoch: int) -> None:
        """Count and mark one loss call's ``(B, K)`` corrections."""
        corrected = corrected.bool().cpu()
        self._counts[name] += corrected.sum(0)
        if self._clean is not None:
            clean = self._clean[sample_idx]
            self._counts['true'] += (corrected & (clean == 1)).sum(0)
            self._counts['false'] += (corrected & (clean == 0)).sum(0)
        if not corrected.any():
            return
        rows, inverse = torch.unique(sample_idx, return_inverse=True)
        hits = torch.zeros((rows.numel(), corrected.size(1)),
                           dtype=torch.int32)
        hits.index_add_(0, inverse, corrected.to(torch.int32))
        marks = store.get(self.field, rows)
        marks[hits > 0] = epoch + 1
        store.update(self.field, rows, marks)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if self._counts is None:
            self.before_train_epoch(runner)
        store = get_label_store(runner)
        for name, loss in self._losses:
            for rec in loss.pop_corrections():
                idx = rec.get('sample_idx')
                if idx is None:
                    samples = data_samples_of(data_batch) or []
                    if len(samples) != rec['corrected'].size(0):
                        raise RuntimeError(
                            f'{type(self).__name__}: {name} corrected '
                            f'{rec["corrected"].size(0)} rows without their '
                            f'sample indices, the batch holds {len(samples)}.')
                    idx = sample_indices(samples, type(self).__name__)
                self.record(store, name, idx, rec['corrected'], runner.epoch)

    def after_train_epoch(self, runner) -> None:
        keys = list(self._counts)
        counts = torch.stack([self._counts[k] for k in keys])
        if dist.get_world_size() > 1:
            dist.all_reduce(counts, op='sum')
        counts = dict(zip(keys, counts))
        store = get_label_store(runner)  # synced by LabelStoreHook before
        marked = store[self.field] == runner.epoch + 1
        quality = correction_quality(marked, store['observed'], self._clean,
                                     self._groups)
        true, false = int(counts['true'].sum()), int(counts['false'].sum())
        record = dict(
            epoch=int(runner.epoch) + 1,
            corrections={n: int(counts[n].sum()) for n, _ in self._losses},
            corrections_per_class={
                n: counts[n].tolist() for n, _ in self._losses},
            event_precision=None if self._clean is None or true + false == 0
            else true / (true + false),
            labels=quality,
            labels_ever=int((store[self.field] > 0).sum()))
        self.history.append(jsonable(record))
        self._counts = None
        print_log(self.log_line(record), 'current', logging.INFO)
        write_json_history(runner, HISTORY_JSON, self.history_dict())

    def log_line(self, record: dict) -> str:
        labels = record['labels']
        parts = [f'{type(self).__name__}: epoch {record["epoch"]}: '
                 f'{sum(record["corrections"].values())} corrections ('
                 + ', '.join(f'{n or "loss"} {v}'
                             for n, v in record['corrections'].items())
                 + f'), {labels["corrected"]} labels '
                 f'{format_vector(labels["per_class"])}']
        if 'precision' in labels:
            def pct(v):
                return 'n/a' if v is None else f'{100 * v:.1f}%'
            groups = ' / '.join(f'{g} {pct(q["recall"])}'
                                for g, q in labels['groups'].items())
            parts.append(f'precision {pct(labels["precision"])}, recall of '
                         f'the {labels["missing"]} missing positives '
                         f'{pct(labels["recall"])} ({groups})')
        return '; '.join(parts) + '.'

    def history_dict(self) -> dict:
        return dict(classes=self._classes,
                    group_thresholds=list(self.group_thresholds),
                    groups={k: v.tolist() for k, v in self._groups.items()},
                    epochs=self.history)

    # ------------------------------------------------------------------
    # checkpointing (StatefulHook); the marks are in the label store's
    # ------------------------------------------------------------------
    def is_set_up(self) -> bool:
        return self._losses is not None

    def state_dict(self) -> dict:
        return dict(version=_STATE_VERSION, history=list(self.history))

    def apply_state(self, state: dict) -> None:
        self.history = list(state.get('history') or [])
