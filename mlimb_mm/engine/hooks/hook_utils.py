"""Small pieces every method hook uses: seeds, sample indices of a batch,
the recording head, the run's other hooks and JSON histories."""
import json
import math
import os
import os.path as osp
from typing import List, Optional, Type

import numpy as np
import torch
from mmengine import dist
from mmengine.model import is_model_wrapper
from torch import nn

from ...utils.seeds import derive_seed  # noqa: F401 (re-exported)


def shared_seed(seed: Optional[int], runner) -> int:
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


def data_samples_of(data_batch) -> Optional[list]:
    """The ``data_samples`` of a dataloader batch (None when absent)."""
    if isinstance(data_batch, dict):
        return data_batch.get('data_samples')
    return None


def sample_indices(samples, who: str) -> torch.Tensor:
    """The ``(B,)`` int64 dataset indices (``metainfo['sample_idx']``) of a
    batch's data samples; ``who`` names the caller in the error."""
    try:
        return torch.as_tensor(
            [int(s.metainfo['sample_idx']) for s in samples],
            dtype=torch.int64)
    except (KeyError, AttributeError):
        raise KeyError(
            f"{who}: data samples must carry metainfo['sample_idx'] (keep "
            "'sample_idx' in the meta_keys of PackMultiLabelInputs)."
        ) from None


def pop_recorded_predictions(head, consumer: str, data_batch,
                             who: str) -> list:
    """The ``(logits, sample_idx)`` of every training call ``head`` recorded
    for ``consumer`` since the last pop; a record without sample indices
    (the head could not read them) takes the batch's, or raises saying
    why."""
    pairs = []
    for record in head.pop_train_predictions(consumer):
        idx = record.get('sample_idx')
        if idx is None:
            idx = sample_indices(data_samples_of(data_batch) or [None], who)
        pairs.append((record['logits'], idx))
    return pairs


def clean_labels_of(dataset) -> Optional[np.ndarray]:
    """The dataset's clean tri-state labels, when a noise wrapper kept them.
    """
    getter = getattr(dataset, 'get_clean_tristate_labels', None)
    labels = getter() if callable(getter) else None
    return None if labels is None else np.asarray(labels)


def class_names_of(dataset, num_classes: int) -> List[str]:
    metainfo = getattr(dataset, 'metainfo', None) or {}
    classes = metainfo.get('classes')
    if not classes or len(classes) != num_classes:
        return [str(k) for k in range(num_classes)]
    return [str(c) for c in classes]


def find_hook(runner, hook_type: Type, who: str, config_hint: str):
    """The one hook of ``hook_type`` in ``runner.hooks``; raises, naming
    ``who`` and the config line to add, when there is none or several."""
    hooks = [h for h in runner.hooks if isinstance(h, hook_type)]
    if not hooks:
        raise RuntimeError(f'{who} needs `{config_hint}` in custom_hooks.')
    if len(hooks) > 1:
        raise RuntimeError(f'{who}: found {len(hooks)} '
                           f'{hook_type.__name__}s in runner.hooks; keep one.')
    return hooks[0]


def find_recording_head(model: nn.Module, hook_name: str) -> nn.Module:
    """The module that records its training predictions
    (``enable_train_predictions`` / ``pop_train_predictions``, e.g.
    ``TriStateLinearClsHead``): ``model.head`` when it does, else the only
    such module. Raises, naming ``hook_name``, when there is none or when
    several do and none is ``model.head``."""
    if is_model_wrapper(model):
        model = model.module

    def records(module) -> bool:
        return callable(getattr(module, 'enable_train_predictions', None)) \
            and callable(getattr(module, 'pop_train_predictions', None))

    head = getattr(model, 'head', None)
    if head is not None and records(head):
        return head
    modules = model.modules() if callable(getattr(model, 'modules',
                                                  None)) else []
    candidates = [m for m in modules if records(m)]
    if not candidates:
        raise TypeError(
            f'{hook_name} needs a head that records its training predictions '
            '(enable_train_predictions / pop_train_predictions, e.g. '
            f'TriStateLinearClsHead); {type(model).__name__} has none.')
    if len(candidates) > 1:
        raise RuntimeError(
            f'{hook_name}: {len(candidates)} modules record training '
            'predictions and none is `model.head`; cannot choose.')
    return candidates[0]


def jsonable(values):
    """A tensor / array / number as plain JSON values (non-finite floats
    become None)."""
    if values is None:
        return None
    if isinstance(values, (torch.Tensor, np.ndarray)):
        values = values.tolist()
    if isinstance(values, float):
        return values if math.isfinite(values) else None
    if isinstance(values, (list, tuple)):
        return [jsonable(v) for v in values]
    if isinstance(values, dict):
        return {k: jsonable(v) for k, v in values.items()}
    return values


def write_json_history(runner, filename: str, record: dict) -> Optional[str]:
    """Write ``record`` to ``runner.log_dir/filename`` atomically, on rank 0
    only; returns the path written (None elsewhere or without a log dir)."""
    log_dir = getattr(runner, 'log_dir', None)
    if log_dir is None or not dist.is_main_process():
        return None
    os.makedirs(log_dir, exist_ok=True)
    path = osp.join(log_dir, filename)
    with open(path + '.tmp', 'w') as f:
        json.dump(record, f)
    os.replace(path + '.tmp', path)
    return path


def format_vector(values, limit: int = 10) -> str:
    """A short summary of a per-class vector for a log line: all values when
    there are at most ``limit``, else min / mean / max with their classes."""
    values = torch.as_tensor(values).double().reshape(-1)
    if values.numel() <= limit:
        return '[' + ', '.join(f'{v:.4g}' for v in values.tolist()) + ']'
    finite = torch.nonzero(torch.isfinite(values)).squeeze(1)
    if finite.numel() == 0:
        return f'[{values.numel()} values, none finite]'
    kept = values[finite]
    low, high = int(finite[kept.argmin()]), int(finite[kept.argmax()])
    return (f'[{values.numel()} classes: min {values[low]:.4g} (class {low}), '
            f'mean {kept.mean():.4g}, max {values[high]:.4g} (class {high})]')
