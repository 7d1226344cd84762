import copy
import json
from typing import List, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset, force_full_init
from mmpretrain.registry import DATASETS

from ..label_utils import NEGATIVE, POSITIVE, UNKNOWN, check_tristate


def dataset_tristate_labels(dataset) -> np.ndarray:
    """The ``(N, K)`` int8 tri-state labels of any mlimb_mm dataset or
    wrapper, or of a dataset whose data infos hold ``gt_label`` (and
    ``gt_label_difficult``, like mmpretrain's ``VOC``: a difficult-only
    class is unknown, the VOC protocol, as ``PackMultiLabelInputs``)."""
    if hasattr(dataset, 'get_tristate_labels'):
        return np.asarray(dataset.get_tristate_labels(), dtype=np.int8)
    classes = dataset.metainfo.get('classes')
    if not classes or not hasattr(dataset, 'get_data_info'):
        raise TypeError(
            f'{type(dataset).__name__} has no `get_tristate_labels()` nor '
            'data infos with `gt_label`: label wrappers need an mlimb_mm '
            'dataset (CocoMultiLabelDataset, TriStateMultiLabelDataset, '
            'LongTailMultiDigits, ...), mmpretrain\'s VOC, or another label '
            'wrapper.')
    dataset.full_init()
    labels = np.full((len(dataset), len(classes)), NEGATIVE, np.int8)
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        difficult = info.get('gt_label_difficult')
        if difficult is not None and len(difficult):
            labels[idx, np.asarray(difficult, np.int64)] = UNKNOWN
        positives = info.get('gt_label')
        if positives is not None and len(positives):
            labels[idx, np.asarray(positives, np.int64)] = POSITIVE
    return labels


def dataset_clean_labels(dataset) -> np.ndarray:
    """The clean labels a corrupted dataset keeps beside its training labels
    (a plain dataset's labels are its clean labels)."""
    if hasattr(dataset, 'get_clean_tristate_labels'):
        return dataset.get_clean_tristate_labels()
    return dataset_tristate_labels(dataset)


class BaseLabelWrapper:
    """Base of the benchmark builders: wrap a multi-label dataset, keep a
    subset of its samples and/or replace their tri-state labels.

    A subclass implements :meth:`build_labels`, which receives the wrapped
    dataset's ``(N, K)`` tri-state labels and a seeded
    ``numpy.random.Generator`` and returns the kept sample indices and their
    new labels. Everything else is shared:

    - Determinism: the only randomness is ``np.random.default_rng(seed)``,
      so the same seed gives the same labels on every machine and rank.
    - Clean labels are kept beside the corrupted ones
      (:meth:`get_clean_tristate_labels`, ``gt_tristate_clean`` in the data
      info) for analyses; training never reads them.
    - ``sample_idx`` is the wrapper's index, the key of the label store.
    - Wrappers nest (``NoisyLabelDataset(LongTailSubsetDataset(...))``): the
      clean labels travel through.
    - :meth:`report` summarises what was done (JSON-able), and
      :meth:`dump_annotation` writes the result as an annotation file that
      ``TriStateMultiLabelDataset`` reads.

    The wrapped dataset's ``pipeline`` is applied to the new data infos, so
    configs keep the pipeline where mmpretrain users expect it.

    Args:
        dataset (BaseDataset | dict): The dataset to wrap, or its config.
        seed (int): Seed of the construction. Defaults to 0.
        lazy_init (bool): Defer building until first use.
            Defaults to False.
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 seed: int = 0,
                 lazy_init: bool = False):
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        self.dataset = dataset
        self.seed = seed
        self._metainfo = copy.deepcopy(dataset.metainfo)
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    # -- what a builder implements ------------------------------------------
    def build_labels(self, labels: np.ndarray, rng: np.random.Generator
                     ) -> Tuple[np.ndarray, np.ndarray]:
        """Return ``(kept_indices, new_labels)`` for the wrapped labels."""
        raise NotImplementedError

    def builder_report(self) -> dict:
        """Builder-specific entries of :meth:`report`."""
        return {}

    # -- shared machinery ---------------------------------------------------
    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self._metainfo)

    @property
    def CLASSES(self):
        return self._metainfo.get('classes')

    @property
    def pipeline(self):
        return self.dataset.pipeline

    def full_init(self):
        if self._fully_initialized:
            return
        self.dataset.full_init()
        source = dataset_tristate_labels(self.dataset)
        clean = np.asarray(dataset_clean_labels(self.dataset), np.int8)
        rng = np.random.default_rng(self.seed)
        indices, labels = self.build_labels(source.copy(), rng)
        indices = np.asarray(indices, dtype=np.int64)
        labels = np.asarray(labels)
        name = type(self).__name__
        if labels.shape != (len(indices), source.shape[1]):
            raise RuntimeError(f'{name}: built labels of shape '
                               f'{labels.shape} for {len(indices)} samples.')
        self.source_indices = indices
        self.labels = check_tristate(
            labels.reshape(-1), labels.size, name).reshape(labels.shape)
        self.clean_labels = clean[indices]
        self.source_labels = source[indices]
        self._fully_initialized = True

    def __len__(self):
        self._fully_initialized or self.full_init()
        return len(self.source_indices)

    @force_full_init
    def get_tristate_labels(self) -> np.ndarray:
        """The ``(N, K)`` int8 training labels, in wrapper order."""
        return self.labels

    @force_full_init
    def get_clean_tristate_labels(self) -> np.ndarray:
        """The ``(N, K)`` int8 clean labels, kept for analyses only."""
        return self.clean_labels

    @force_full_init
    def get_class_counts(self) -> np.ndarray:
        return (self.labels == POSITIVE).sum(0).astype(np.int64)

    @force_full_init
    def get_cat_ids(self, idx: int) -> List[int]:
        return np.flatnonzero(self.labels[idx] == POSITIVE).tolist()

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        info = self.dataset.get_data_info(int(self.source_indices[idx]))
        info['gt_tristate'] = self.labels[idx]
        info['gt_label'] = np.flatnonzero(
            self.labels[idx] == POSITIVE).tolist()
        info['gt_tristate_clean'] = self.clean_labels[idx]
        info['sample_idx'] = idx
        return info

    def __getitem__(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        results = self.dataset.pipeline(info)
        if results is None:
            raise RuntimeError(f'{type(self).__name__}: the pipeline '
                               f'dropped sample {idx}.')
        return results

    @force_full_init
    def report(self) -> dict:
        """What the builder did, as a JSON-able dict."""
        clean_pos = self.clean_labels == POSITIVE
        labels_pos = self.labels == POSITIVE
        known = self.labels != UNKNOWN
        changed = known & (self.labels != self.clean_labels) & (
            self.clean_labels != UNKNOWN)
        report = dict(
            builder=type(self).__name__,
            seed=self.seed,
            num_source_samples=len(self.dataset),
            num_samples=len(self),
            num_classes=self.labels.shape[1],
            classes=list(self.CLASSES or []),
            class_counts=labels_pos.sum(0).tolist(),
            clean_class_counts=clean_pos.sum(0).tolist(),
            unknown_fraction=float((~known).mean()) if known.size else 0.,
            wrong_label_fraction=float(changed.sum() / max(known.sum(), 1)),
        )
        report.update(self.builder_report())
        return report

    @force_full_init
    def dump_annotation(self, out_file: str, progress: bool = True):
        """Write the built benchmark as an OpenMMLab-2.0 JSON annotation
        file (``TriStateMultiLabelDataset`` reads it): each entry holds
        ``img_path``, ``gt_tristate`` and ``gt_tristate_clean``."""
        from mmengine.utils import track_iter_progress
        indices = range(len(self))
        if progress:
            indices = track_iter_progress(indices)
        data_list = []
        for idx in indices:
            info = self.dataset.get_data_info(int(self.source_indices[idx]))
            if 'img_path' not in info:
                raise ValueError(
                    f'{type(self).__name__}.dump_annotation: sample {idx} of '
                    f'{type(self.dataset).__name__} has no img_path (an '
                    'in-memory dataset can be used through the wrapper in a '
                    'config, not exported).')
            data_list.append(
                dict(
                    img_path=info['img_path'],
                    gt_tristate=self.labels[idx].tolist(),
                    gt_tristate_clean=self.clean_labels[idx].tolist()))
        content = dict(
            metainfo=dict(classes=list(self.CLASSES)), data_list=data_list)
        with open(out_file, 'w') as f:
            json.dump(content, f)

    def __repr__(self):
        state = 'built' if self._fully_initialized else 'lazy'
        return (f'{type(self).__name__}({state}, seed={self.seed}, '
                f'dataset={type(self.dataset).__name__})')

