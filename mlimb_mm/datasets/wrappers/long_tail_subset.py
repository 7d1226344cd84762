"""Long-tailed subsets of multi-label datasets: COCO-MLT / VOC-MLT style
benchmarks (Wu et al. 2020, "Distribution-Balanced Loss", §4.1 and
appendix A.1)."""
import os.path as osp
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmpretrain.registry import DATASETS

from ..label_utils import (GROUP_NAMES, POSITIVE, long_tail_groups,
                           read_json_file)
from .base_label_wrapper import BaseLabelWrapper

RANK_BY = ('resample_prob', 'size')
ID_KEYS = ('auto', 'img_id', 'basename', 'index')


def pareto_reference_sizes(num_classes: int,
                           max_size: int,
                           alpha: float = 6.,
                           min_size: Optional[int] = None,
                           cdf_cut: float = 0.99) -> np.ndarray:
    """Reference class sizes from a Pareto pdf, head first (DB appendix A.1).

    The appendix: take ``pdf(x) = alpha * x_min^alpha / x^(alpha+1)``, cut it
    where the CDF reaches 0.99, rescale it to a maximum of ``N_max`` and split
    the x-axis evenly into K classes. With ``x_min = 1`` and
    ``q = 1 - cdf_cut`` the cut is at ``x = q^(-1/alpha)`` (2.154 for
    alpha=6), and the K class positions and the normalised pdf are::

        x_i = 1 + i / (K - 1) * (q^(-1/alpha) - 1),   i = 0 .. K-1
        g_i = pdf(x_i) / pdf(1) = x_i^-(alpha+1)       (g_0 = 1)

    The reference size of the class of rank i (0 = head) is then

    - ``min_size=None`` (the paper's curve, as in the authors' released
      ``pareto_dist(b, K, max, min=1)``):
      ``floor(1 + (max_size - 1) * g_i)``. The tail is derived:
      ``floor(1 + (max_size-1) * q^((alpha+1)/alpha))``; alpha=6 gives
      1200 -> 6 (COCO-MLT: the paper reports a minimum of 6) and
      800 -> 4 (VOC-MLT: minimum 4).
    - ``min_size=m`` (ours, for an exact tail): the same pdf shape mapped
      affinely onto ``[m, max_size]``:
      ``floor(m + (max_size - m) * (g_i - g_{K-1}) / (1 - g_{K-1}))``, so
      the head gets exactly ``max_size`` and the tail exactly ``m``.

    Returns:
        np.ndarray: ``(K,)`` int64 sizes, non-increasing, head first.
    """
    if not alpha > 0:
        raise ValueError(f'Pareto power alpha must be > 0, got {alpha}.')
    if not 0 < cdf_cut < 1:
        raise ValueError(f'cdf_cut must be in (0, 1), got {cdf_cut}.')
    if max_size < 1:
        raise ValueError(f'max_size must be >= 1, got {max_size}.')
    if min_size is not None and not 1 <= min_size <= max_size:
        raise ValueError(f'min_size must be in [1, max_size={max_size}], got '
                         f'{min_size}.')
    x_cut = (1. - cdf_cut)**(-1. / alpha)
    x = 1. + np.arange(num_classes) / max(num_classes - 1, 1) * (x_cut - 1.)
    g = x**-(alpha + 1.)
    if min_size is None:
        sizes = 1. + (max_size - 1.) * g
    elif num_classes == 1:
        sizes = np.full(1, float(max_size))
    else:
        shape = (g - g[-1]) / (1. - g[-1])
        sizes = min_size + (max_size - min_size) * shape
    # a tiny epsilon so that e.g. 5.9999999 (rounding noise) floors to 6
    return np.floor(sizes + 1e-9).astype(np.int64)


def resample_probability(positives: np.ndarray,
                         chunk: int = 65536) -> np.ndarray:
    """``p_hat_i = 1/C sum_j n_{i and j} / n_j``, DB Eq. (1): the chance that
    a class-aware sample contains class i. Classes with ``n_j = 0`` are left
    out of the sum. The co-occurrence matrix is accumulated over row chunks
    (float32 products, exact per chunk, summed in float64)."""
    num_classes = positives.shape[1]
    co = np.zeros((num_classes, num_classes), np.float64)
    for start in range(0, len(positives), chunk):
        block = positives[start:start + chunk].astype(np.float32)
        co += block.T @ block
    n = np.diag(co).copy()
    cond = np.divide(co, n[None, :], out=np.zeros_like(co),
                     where=n[None, :] > 0)  # cond[i, j] = p(i | j)
    return cond.sum(1) / max(num_classes, 1)


def read_image_list(path: str) -> list:
    """A JSON list (``.json``), or a text file of one entry per line
    (anything else; blank lines and lines starting with ``#`` skipped). The
    authors' ``appendix/coco/longtail2017/img_id.pkl`` is such a text file
    despite its extension, and so is their VOC ``img_id.txt``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'image list {path!r} not found.')
    if path.lower().endswith('.json'):
        entries = read_json_file(path, 'image list')
        if not isinstance(entries, list):
            raise ValueError(f'image list {path!r}: a JSON image list must '
                             f'be a list, got {type(entries).__name__}.')
        return entries
    with open(path) as f:
        lines = [line.strip() for line in f]
    return [line for line in lines if line and not line.startswith('#')]


@DATASETS.register_module()
class LongTailSubsetDataset(BaseLabelWrapper):
    """A long-tailed subset of a multi-label dataset, built as COCO-MLT and
    VOC-MLT were (Wu et al. 2020, DB loss, §4.1 and appendix A.1).

    Labels are not changed: the wrapper keeps a subset of the samples, in
    the source order, with their source labels. The classes are ranked by
    the re-sampling probability of DB Eq. (1) (or by size, or a given
    order); each class k of rank r gets the target ``t_r`` of a Pareto
    reference curve (:func:`pareto_reference_sizes`: power ``alpha``, cut
    at CDF ``cdf_cut``, head ``max_size``); then, from head to tail, images
    positive for k are added to the subset (or removed from it) uniformly at
    random until class k holds ``t_r`` images. The tail classes end exact;
    the head classes drift through co-occurrence (:meth:`builder_report`
    gives every class's target, realised size and deviation).

    Alternatively ``image_ids`` or ``indices_file`` (e.g. the authors'
    published ``img_id.pkl`` / ``img_id.txt``) select the subset directly,
    matched by ``img_id``, image basename or index (``id_key``).

    The reading of appendix A.1, the choices where it is silent and the
    bound on the head drift are in ``docs/datasets.md``.

    Args:
        dataset (BaseDataset | dict): The source dataset, or its config.
        alpha (float): Pareto power. Defaults to 6 (the paper).
        max_size (int, optional): Target of the head class (N_max). None
            derives the largest the source allows. Defaults to None.
        min_size (int, optional): Target of the tail class; None keeps the
            paper's curve (tail derived). Defaults to None.
        cdf_cut (float): Where the pdf is cut. Defaults to 0.99.
        rank_by (str): ``'resample_prob'`` (DB Eq. 1, the paper) or
            ``'size'``. Ignored when ``class_order`` is given.
            Defaults to ``'resample_prob'``.
        class_order (Sequence[str | int], optional): Class names or indices,
            head first, all K classes. Defaults to None.
        image_ids (Sequence | str, optional): Entries of a given subset
            (image ids, paths or indices); a string is read as the path of
            such a list (as ``indices_file``). Defaults to None.
        indices_file (str, optional): File holding such a list.
            Defaults to None.
        id_key (str): How list entries are matched: ``'auto'`` (``img_id``
            when the data infos have one, else the ``img_path`` basename,
            else the index), ``'img_id'``, ``'basename'`` or ``'index'``.
            Defaults to ``'auto'``.
        group_thresholds (tuple[int, int]): ``(low, high)`` of the report's
            group split. Defaults to (20, 100).
        num_passes (int): Head-to-tail sweeps; 1 is the paper. More sweeps
            (ours) repeat the same add/eliminate steps on the current
            subset, which brings the head classes, pulled down by the
            eliminations of the tail steps, nearer their targets.
            Defaults to 1.
        seed (int): Seed of the random picks. Defaults to 0.
        lazy_init (bool): Defer building until first use.
            Defaults to False.

    Examples:
        >>> subset = LongTailSubsetDataset(
        ...     dict(type='CocoMultiLabelDataset', data_root='data/coco',
        ...          ann_file='annotations/instances_train2017.json',
        ...          data_prefix=dict(img_path='train2017')),
        ...     alpha=6, max_size=1200)
        >>> subset.report()['per_class'][-1]   # the tail class
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 alpha: float = 6.,
                 max_size: Optional[int] = None,
                 min_size: Optional[int] = None,
                 cdf_cut: float = 0.99,
                 rank_by: str = 'resample_prob',
                 class_order: Optional[Sequence[Union[str, int]]] = None,
                 image_ids: Optional[Sequence] = None,
                 indices_file: Optional[str] = None,
                 id_key: str = 'auto',
                 group_thresholds: Tuple[int, int] = (20, 100),
                 num_passes: int = 1,
                 seed: int = 0,
                 lazy_init: bool = False):
        name = type(self).__name__
        if not alpha > 0:
            raise ValueError(f'{name}: the Pareto power alpha must be > 0, '
                             f'got {alpha}.')
        if not 0 < cdf_cut < 1:
            raise ValueError(f'{name}: cdf_cut must be in (0, 1), got '
                             f'{cdf_cut}.')
        if max_size is not None and max_size < 1:
            raise ValueError(f'{name}: max_size must be >= 1, got '
                             f'{max_size}.')
        if min_size is not None and (min_size < 1 or (
                max_size is not None and min_size > max_size)):
            raise ValueError(f'{name}: min_size must be >= 1 and <= max_size '
                             f'({max_size}), got {min_size}.')
        if rank_by not in RANK_BY:
            raise ValueError(f'{name}: rank_by must be one of {RANK_BY}, got '
                             f'{rank_by!r}.')
        if id_key not in ID_KEYS:
            raise ValueError(f'{name}: id_key must be one of {ID_KEYS}, got '
                             f'{id_key!r}.')
        if image_ids is not None and indices_file is not None:
            raise ValueError(f'{name}: give image_ids or indices_file, not '
                             'both.')
        if int(num_passes) != num_passes or num_passes < 1:
            raise ValueError(f'{name}: num_passes must be an integer >= 1, '
                             f'got {num_passes}.')
        group_thresholds = tuple(group_thresholds)
        if len(group_thresholds) != 2 or \
                group_thresholds[0] > group_thresholds[1]:
            raise ValueError(f'{name}: group_thresholds must be (low, high) '
                             f'with low <= high, got {group_thresholds}.')
        self.alpha = float(alpha)
        self.max_size = max_size
        self.min_size = min_size
        self.cdf_cut = float(cdf_cut)
        self.rank_by = rank_by
        self.class_order = None if class_order is None else list(class_order)
        if isinstance(image_ids, str):  # a path: the same as indices_file
            if indices_file is not None:
                raise ValueError(f'{name}: give image_ids or indices_file, '
                                 'not both.')
            image_ids, indices_file = None, image_ids
        self.image_ids = None if image_ids is None else list(image_ids)
        self.indices_file = indices_file
        self.id_key = id_key
        self.group_thresholds = group_thresholds
        self.num_passes = int(num_passes)
        self._build_info = {}
        super().__init__(dataset, seed=seed, lazy_init=lazy_init)

    # -- helpers --------------------------------------------------------------
    def _class_name(self, k: int) -> str:
        classes = self.CLASSES
        return str(classes[k]) if classes is not None and k < len(
            classes) else str(k)

    def _rank(self, positives: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Class indices, head first."""
        num_classes = positives.shape[1]
        name = type(self).__name__
        if self.class_order is not None:
            classes = list(self.CLASSES or [])
            order = []
            for item in self.class_order:
                if isinstance(item, (int, np.integer)):
                    if not 0 <= item < num_classes:
                        raise ValueError(f'{name}: class_order index {item} '
                                         f'is out of [0, {num_classes}).')
                    order.append(int(item))
                elif item in classes:
                    order.append(classes.index(item))
                else:
                    raise ValueError(f'{name}: class_order names {item!r}, '
                                     'which is not a class of the source.')
            order = np.asarray(order, np.int64)
            if len(order) != num_classes or len(np.unique(order)) != len(
                    order):
                raise ValueError(f'{name}: class_order must list each of the '
                                 f'{num_classes} classes once, got '
                                 f'{self.class_order}.')
            return order
        if self.rank_by == 'size':
            return np.argsort(-sizes, kind='stable')
        return np.argsort(-resample_probability(positives), kind='stable')

    def _targets(self, num_classes: int, max_size: int) -> np.ndarray:
        return pareto_reference_sizes(num_classes, max_size, self.alpha,
                                      self.min_size, self.cdf_cut)

    def _derive_max_size(self, ranked_sizes: np.ndarray) -> Optional[int]:
        """The largest head size whose targets all fit (None if none does);
        the targets grow with ``max_size``, so bisection finds it."""
        num_classes = len(ranked_sizes)
        lo = max(self.min_size or 1, 1)
        hi = int(ranked_sizes.max())

        def fits(m):
            return bool((self._targets(num_classes, m) <= ranked_sizes).all())

        if hi < lo or not fits(lo):
            return None
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid - 1
        return lo

    # -- building -------------------------------------------------------------
    def build_labels(self, labels: np.ndarray, rng: np.random.Generator
                     ) -> Tuple[np.ndarray, np.ndarray]:
        if self.image_ids is not None or self.indices_file is not None:
            self._build_info = dict(mode='list')
            indices = self._indices_from_list()
        else:
            indices = self._pareto_subset(labels, rng)
        return indices, labels[indices]

    def _pareto_subset(self, labels: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
        name = type(self).__name__
        positives = labels == POSITIVE
        num_images, num_classes = positives.shape
        sizes = positives.sum(0).astype(np.int64)
        empty = np.flatnonzero(sizes == 0)
        if len(empty):
            raise ValueError(
                f'{name}: class {self._class_name(empty[0])!r} has no '
                'positive image in the source dataset' +
                (f' ({len(empty) - 1} more empty classes)'
                 if len(empty) > 1 else '') +
                '; a long-tailed subset needs every class.')
        order = self._rank(positives, sizes)
        max_size = self.max_size
        derived = max_size is None
        if derived:
            max_size = self._derive_max_size(sizes[order])
            if max_size is None:
                k = int(order[-1])
                raise ValueError(
                    f'{name}: no Pareto curve fits the source: class '
                    f'{self._class_name(k)!r} has {sizes[k]} images, fewer '
                    f'than min_size={self.min_size}.')
        if self.min_size is not None and self.min_size > max_size:
            raise ValueError(f'{name}: min_size={self.min_size} is larger '
                             f'than max_size={max_size}.')
        targets = self._targets(num_classes, max_size)
        short = np.flatnonzero(targets > sizes[order])
        if len(short):
            r = int(short[0])
            k = int(order[r])
            allowed = self._derive_max_size(sizes[order])
            hint = (f'the largest max_size this source allows is {allowed}'
                    if allowed is not None else 'no max_size fits')
            raise ValueError(
                f'{name}: class {self._class_name(k)!r} has {sizes[k]} '
                f'images, the Pareto target asks {targets[r]} (rank {r} of '
                f'{num_classes}, alpha={self.alpha:g}, max_size={max_size}'
                f'); {hint}.')

        # images of each class, as index arrays (one pass, no K x N loop)
        cls_of, img_of = np.nonzero(positives.T)
        bounds = np.concatenate([[0], np.cumsum(np.bincount(
            cls_of, minlength=num_classes))])
        in_subset = np.zeros(num_images, bool)
        counts = np.zeros(num_classes, np.int64)
        steps = np.zeros(num_classes, np.int64)
        for _ in range(self.num_passes):
            for r, k in enumerate(order):
                members = img_of[bounds[k]:bounds[k + 1]]
                delta = int(targets[r] - counts[k])
                if delta > 0:
                    pool = members[~in_subset[members]]
                    picked = rng.choice(pool, size=delta, replace=False)
                    in_subset[picked] = True
                    counts += positives[picked].sum(0)
                elif delta < 0:
                    pool = members[in_subset[members]]
                    picked = rng.choice(pool, size=-delta, replace=False)
                    in_subset[picked] = False
                    counts -= positives[picked].sum(0)
                steps[r] = delta
        self._build_info = dict(
            mode='pareto',
            order=order,
            targets_ranked=targets,
            max_size=int(max_size),
            max_size_derived=derived,
            source_sizes=sizes,
            steps=steps)
        return np.flatnonzero(in_subset)

    def _list_entries(self) -> Tuple[list, str]:
        if self.image_ids is not None:
            return self.image_ids, 'image_ids'
        return read_image_list(self.indices_file), self.indices_file

    def _indices_from_list(self) -> np.ndarray:
        name = type(self).__name__
        entries, where = self._list_entries()
        if not len(entries):
            raise ValueError(f'{name}: the image list {where} is empty.')
        source = self.dataset
        num = len(source)
        key = self.id_key
        if key == 'auto':
            info = source.get_data_info(0) if num else {}
            key = ('img_id' if 'img_id' in info else
                   'basename' if 'img_path' in info else 'index')

        def norm(entry):
            text = str(entry).strip()
            if key == 'basename':
                return osp.splitext(osp.basename(text))[0]
            return text

        if key == 'index':
            indices = []
            for entry in entries:
                try:
                    idx = int(str(entry).strip())
                except ValueError:
                    raise ValueError(
                        f'{name}: entry {entry!r} of {where} is not an '
                        'integer index (the source data infos have neither '
                        '`img_id` nor `img_path`).') from None
                if not 0 <= idx < num:
                    raise ValueError(
                        f'{name}: index {idx} of {where} is not in the source '
                        f'dataset ({type(source).__name__}, {num} samples).')
                indices.append(idx)
            indices = np.asarray(indices, np.int64)
            listed = [str(i) for i in indices.tolist()]
        else:
            field = 'img_id' if key == 'img_id' else 'img_path'
            lookup = {}
            for i in range(num):
                value = source.get_data_info(i).get(field)
                if value is None:
                    raise ValueError(f'{name}: sample {i} of '
                                     f'{type(source).__name__} has no '
                                     f'`{field}` to match id_key={key!r}.')
                lookup.setdefault(norm(value), []).append(i)
            listed = [norm(e) for e in entries]
            missing = [e for e, n in zip(entries, listed) if n not in lookup]
            if missing:
                raise ValueError(
                    f'{name}: image {str(missing[0]).strip()!r} of {where} '
                    f'is not in the source dataset ({type(source).__name__}'
                    f', matched by {key})' +
                    (f'; {len(missing) - 1} more missing'
                     if len(missing) > 1 else '') + '.')
            ambiguous = [e for e, n in zip(entries, listed)
                         if len(lookup[n]) > 1]
            if ambiguous:
                raise ValueError(
                    f'{name}: image {str(ambiguous[0]).strip()!r} of {where} '
                    f'matches {len(lookup[norm(ambiguous[0])])} source '
                    f'samples (matched by {key}); give indices or img_ids.')
            indices = np.asarray([lookup[n][0] for n in listed], np.int64)
        unique, first, counts = np.unique(
            indices, return_index=True, return_counts=True)
        if (counts > 1).any():
            j = int(first[np.flatnonzero(counts > 1)[0]])
            raise ValueError(f'{name}: image {str(entries[j]).strip()!r} is '
                             'listed more '
                             f'than once in {where}.')
        self._build_info['matched_by'] = key
        self._build_info['list_source'] = where
        return unique

    # -- report ---------------------------------------------------------------
    def builder_report(self) -> dict:
        info = self._build_info
        counts = self.get_class_counts()
        num_classes = len(counts)
        groups = long_tail_groups(counts, self.group_thresholds)
        group_of = np.empty(num_classes, dtype=object)
        for group, members in groups.items():
            group_of[members] = group
        nonzero = counts[counts > 0]
        report = dict(
            mode=info.get('mode'),
            group_thresholds=list(self.group_thresholds),
            groups={g: [self._class_name(k) for k in groups[g]]
                    for g in GROUP_NAMES},
            group_sizes={g: int(len(groups[g])) for g in GROUP_NAMES},
            imbalance_ratio=(float(nonzero.max() / nonzero.min())
                             if len(nonzero) else None),
            num_empty_classes=int((counts == 0).sum()),
        )
        if info.get('mode') == 'list':
            report.update(
                image_list=info.get('list_source'),
                matched_by=info.get('matched_by'),
                class_order=None,
                target_class_counts=None)
            report['per_class'] = [
                dict(index=k, name=self._class_name(k), target=None,
                     realised=int(counts[k]), group=group_of[k])
                for k in np.argsort(-counts, kind='stable').tolist()
            ]
            return report

        order = info['order']
        targets = np.empty(num_classes, np.int64)
        targets[order] = info['targets_ranked']
        deviation = counts - targets
        steps = info['steps']
        report.update(
            alpha=self.alpha,
            cdf_cut=self.cdf_cut,
            max_size=info['max_size'],
            max_size_derived=info['max_size_derived'],
            min_size=int(info['targets_ranked'][-1]),
            min_size_given=self.min_size is not None,
            num_passes=self.num_passes,
            rank_by=('class_order' if self.class_order is not None else
                     self.rank_by),
            class_order=[self._class_name(k) for k in order.tolist()],
            target_class_counts=targets.tolist(),
            target_imbalance_ratio=float(targets.max() / targets.min()),
            step_changes=steps.tolist(),
            max_abs_deviation=int(np.abs(deviation).max()),
            max_abs_deviation_by_group={
                g: (int(np.abs(deviation[groups[g]]).max())
                    if len(groups[g]) else None)
                for g in GROUP_NAMES
            },
        )
        report['per_class'] = [
            dict(rank=r, index=k, name=self._class_name(k),
                 source=int(info['source_sizes'][k]), target=int(targets[k]),
                 realised=int(counts[k]), deviation=int(deviation[k]),
                 group=group_of[k])
            for r, k in enumerate(order.tolist())
        ]
        return report

    def __repr__(self):
        return super().__repr__()[:-1] + f', alpha={self.alpha:g})'
