"""Partial-label benchmarks: hide a part of a dataset's labels.

Four constructions, all as :class:`MissingLabelDataset` modes: PAL, PPL and
SPL (Zhang et al.) and COMIC's missing positives (PLT-COCO / PLT-VOC). The
papers' text they rest on and the choices they leave open are in
``docs/datasets.md``.
"""
import warnings
from typing import Optional, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset, force_full_init
from mmpretrain.registry import DATASETS

from ..label_utils import NEGATIVE, POSITIVE, UNKNOWN, check_missing_as
from .base_label_wrapper import BaseLabelWrapper


def _nearest_int(value: float) -> int:
    """Round half up (``round`` would round half to even)."""
    return int(np.floor(value + 0.5))


def pick_per_row(mask: np.ndarray, num_per_row: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``min(num_per_row, mask[i].sum())`` entries of each row of ``mask``,
    drawn uniformly without replacement; returns a boolean mask.

    Vectorised over the nonzero entries only (memory ``O(nnz)``): the entries
    get random keys, are sorted by (row, key), and the first
    ``num_per_row`` of each row are picked.
    """
    picked = np.zeros_like(mask, dtype=bool)
    if num_per_row <= 0:
        return picked
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return picked
    keys = rng.random(rows.size)
    order = np.lexsort((keys, rows))  # by row, then by key
    rows, cols = rows[order], cols[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    counts = np.diff(np.r_[starts, rows.size])
    rank = np.arange(rows.size) - np.repeat(starts, counts)
    chosen = rank < num_per_row
    picked[rows[chosen], cols[chosen]] = True
    return picked


@DATASETS.register_module()
class MissingLabelDataset(BaseLabelWrapper):
    """Hide labels of a multi-label dataset: the partial-label benchmarks.

    Every mode decides, for each *eligible* label of the wrapped dataset,
    whether it is kept or becomes unknown (-1). Labels that are unknown in
    the wrapped dataset stay unknown and are never counted. All samples are
    kept. Modes (``q`` = ``keep_ratio``, ``r`` = ``missing_rate``):

    - ``'pal'``, partially annotated labels (Zhang et al. §V-A): a fraction
      ``q`` of all known labels, positives and negatives alike, is kept; no
      positive is guaranteed per image (``min_positives=0``).
    - ``'ppl'``, partially annotated positive labels: a fraction ``q`` of
      the known positives is kept, at least one per image that has one
      (``min_positives=1``); every negative becomes unknown.
    - ``'spl'``, single positive label (Cole et al.'s construction): one
      known positive per image, drawn uniformly; everything else becomes
      unknown.
    - ``'missing_positives'``, COMIC (Zhang et al., ICCV 2023) §4.1: a
      fraction ``r`` of the known positives becomes missing (unknown, or 0
      as in COMIC's binary labels with ``missing_as='negative'``);
      negatives are kept.

    ``sampling='exact'`` keeps exactly ``round(q * E)`` of the ``E``
    eligible labels of the whole dataset, ``'bernoulli'`` keeps each with
    probability ``q``; the positives forced by ``min_positives`` are drawn
    first. :meth:`report` gives the requested and realised kept fractions
    (overall and per class) and the images left without a known positive.

    Args:
        dataset (BaseDataset | dict): The dataset to wrap (any mlimb_mm
            dataset or label wrapper), or its config.
        mode (str): ``'pal'``, ``'ppl'``, ``'spl'`` or
            ``'missing_positives'``.
        keep_ratio (float, optional): ``pal`` / ``ppl``: fraction of the
            eligible labels kept, in (0, 1]. Required by these modes, not
            accepted by the others.
        missing_rate (float, optional): ``missing_positives``: fraction of
            the known positives made missing, in [0, 1). Required by this
            mode, not accepted by the others.
        sampling (str): ``'exact'`` or ``'bernoulli'``. Defaults to
            ``'exact'``.
        min_positives (int, optional): Known positives kept at least per
            image (fewer when the image has fewer). Defaults to 1 for
            ``ppl`` and ``spl`` (where it must be 1) and 0 for ``pal`` and
            ``missing_positives``.
        missing_as (str): ``missing_positives`` only: what a missing
            positive becomes, ``'unknown'`` (-1) or ``'negative'`` (0).
            Defaults to ``'unknown'``.
        seed (int): Seed of the construction. Defaults to 0.
        lazy_init (bool): Defer building until first use.
            Defaults to False.
    """

    MODES = ('pal', 'ppl', 'spl', 'missing_positives')
    SAMPLINGS = ('exact', 'bernoulli')

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 mode: str,
                 keep_ratio: Optional[float] = None,
                 missing_rate: Optional[float] = None,
                 sampling: str = 'exact',
                 min_positives: Optional[int] = None,
                 missing_as: str = 'unknown',
                 seed: int = 0,
                 lazy_init: bool = False):
        name = type(self).__name__
        if mode not in self.MODES:
            raise ValueError(f'{name}: unknown mode {mode!r}; choose one of '
                             f'{self.MODES}.')
        if sampling not in self.SAMPLINGS:
            raise ValueError(f'{name}: unknown sampling {sampling!r}; choose '
                             f'one of {self.SAMPLINGS}.')
        if mode in ('pal', 'ppl'):
            if keep_ratio is None:
                raise ValueError(f"{name}: mode {mode!r} needs keep_ratio.")
            if not 0 < float(keep_ratio) <= 1:
                raise ValueError(f'{name}: keep_ratio must be in (0, 1], '
                                 f'got {keep_ratio}.')
        elif keep_ratio is not None:
            raise ValueError(f'{name}: keep_ratio={keep_ratio} is not used '
                             f'by mode {mode!r}.')
        if mode == 'missing_positives':
            if missing_rate is None:
                raise ValueError(
                    f"{name}: mode 'missing_positives' needs missing_rate.")
            if not 0 <= float(missing_rate) < 1:
                raise ValueError(f'{name}: missing_rate must be in [0, 1), '
                                 f'got {missing_rate}.')
        elif missing_rate is not None:
            raise ValueError(f'{name}: missing_rate={missing_rate} is not '
                             f'used by mode {mode!r}.')
        if min_positives is None:
            min_positives = 1 if mode in ('ppl', 'spl') else 0
        if int(min_positives) != min_positives or min_positives < 0:
            raise ValueError(f'{name}: min_positives must be an integer '
                             f'>= 0, got {min_positives}.')
        if mode == 'spl' and min_positives != 1:
            raise ValueError(f"{name}: mode 'spl' keeps exactly one positive "
                             f'per image; min_positives={min_positives} '
                             'does not apply.')
        check_missing_as(name, missing_as, mode == 'missing_positives',
                         "mode 'missing_positives'")
        self.mode = mode
        self.keep_ratio = None if keep_ratio is None else float(keep_ratio)
        self.missing_rate = (None if missing_rate is None else
                             float(missing_rate))
        self.sampling = sampling
        self.min_positives = int(min_positives)
        self.missing_as = missing_as
        super().__init__(dataset, seed=seed, lazy_init=lazy_init)

    # -- what is asked ------------------------------------------------------
    @property
    def requested_positive_fraction(self) -> Optional[float]:
        """Requested kept fraction of the known positives (``None`` for
        ``spl``, where it is one per image)."""
        if self.mode in ('pal', 'ppl'):
            return self.keep_ratio
        if self.mode == 'missing_positives':
            return 1. - self.missing_rate
        return None

    @property
    def requested_negative_fraction(self) -> float:
        """Requested kept fraction of the known negatives."""
        return {'pal': self.keep_ratio, 'ppl': 0., 'spl': 0.,
                'missing_positives': 1.}[self.mode]

    # -- construction -------------------------------------------------------
    def build_labels(self, labels: np.ndarray, rng: np.random.Generator
                     ) -> Tuple[np.ndarray, np.ndarray]:
        positive = labels == POSITIVE
        negative = labels == NEGATIVE
        if self.mode == 'pal':
            eligible, rate = positive | negative, self.keep_ratio
        elif self.mode == 'ppl':
            eligible, rate = positive, self.keep_ratio
        elif self.mode == 'spl':
            eligible, rate = positive, 0.
        else:
            eligible, rate = positive, 1. - self.missing_rate

        forced = pick_per_row(eligible & positive, self.min_positives, rng)
        rest = eligible & ~forced
        num_eligible = int(eligible.sum())
        num_forced = int(forced.sum())
        num_rest = int(rest.sum())
        target = rate * num_eligible
        self._forced_exceeds_request = (
            self.mode != 'spl' and num_forced > _nearest_int(target))
        if self._forced_exceeds_request:
            warnings.warn(
                f'{type(self).__name__}({self.mode!r}): the {num_forced} '
                f'positives kept by min_positives={self.min_positives} '
                f'exceed the requested {_nearest_int(target)} of '
                f'{num_eligible} eligible labels; the realised kept fraction '
                f'is {num_forced / max(num_eligible, 1):.4f} instead of '
                f'{rate}.')
        kept = forced.copy()
        if num_rest:
            if self.sampling == 'exact':
                num_extra = min(max(_nearest_int(target) - num_forced, 0),
                                num_rest)
                chosen = rng.choice(
                    np.flatnonzero(rest), size=num_extra, replace=False)
                kept.reshape(-1)[chosen] = True
            else:
                prob = min(max((target - num_forced) / num_rest, 0.), 1.)
                kept |= rest & (rng.random(labels.shape) < prob)

        new = labels.copy()
        dropped = eligible & ~kept
        if self.mode == 'missing_positives':
            new[dropped] = (UNKNOWN if self.missing_as == 'unknown' else
                            NEGATIVE)
        else:
            new[dropped] = UNKNOWN
            if self.mode in ('ppl', 'spl'):
                new[negative] = UNKNOWN
        return np.arange(len(labels)), new

    # -- report -------------------------------------------------------------
    @force_full_init
    def builder_report(self) -> dict:
        source = self.source_labels
        source_pos = source == POSITIVE
        source_neg = source == NEGATIVE
        kept_pos = source_pos & (self.labels == POSITIVE)
        kept_neg = source_neg & (self.labels == NEGATIVE)

        def fraction(kept, total):
            total = np.asarray(total)
            return np.where(total > 0, kept / np.maximum(total, 1),
                            np.nan)

        def as_list(values):
            return [None if np.isnan(v) else round(float(v), 6)
                    for v in values]

        pos_per_class = fraction(kept_pos.sum(0), source_pos.sum(0))
        neg_per_class = fraction(kept_neg.sum(0), source_neg.sum(0))
        had_positive = source_pos.any(1)
        has_positive = (self.labels == POSITIVE).any(1)
        return dict(
            mode=self.mode,
            keep_ratio=self.keep_ratio,
            missing_rate=self.missing_rate,
            sampling=self.sampling,
            min_positives=self.min_positives,
            missing_as=self.missing_as,
            requested_positive_fraction=self.requested_positive_fraction,
            requested_negative_fraction=self.requested_negative_fraction,
            realised_positive_fraction=float(
                kept_pos.sum() / max(source_pos.sum(), 1)),
            realised_negative_fraction=float(
                kept_neg.sum() / max(source_neg.sum(), 1)),
            realised_positive_fraction_per_class=as_list(pos_per_class),
            realised_negative_fraction_per_class=as_list(neg_per_class),
            source_known_positives=int(source_pos.sum()),
            source_known_negatives=int(source_neg.sum()),
            kept_positives=int(kept_pos.sum()),
            kept_negatives=int(kept_neg.sum()),
            mean_kept_positives_per_image=float(
                kept_pos.sum(1).mean()) if len(source) else 0.,
            num_images_without_source_positive=int((~had_positive).sum()),
            num_images_lost_all_positives=int(
                (had_positive & ~has_positive).sum()),
            forced_exceeds_request=bool(self._forced_exceeds_request),
        )

    def __repr__(self):
        state = 'built' if self._fully_initialized else 'lazy'
        ratio = (f'keep_ratio={self.keep_ratio}' if self.keep_ratio
                 is not None else f'missing_rate={self.missing_rate}'
                 if self.missing_rate is not None else 'one positive')
        return (f'{type(self).__name__}({state}, mode={self.mode!r}, '
                f'{ratio}, sampling={self.sampling!r}, seed={self.seed}, '
                f'dataset={type(self.dataset).__name__})')
