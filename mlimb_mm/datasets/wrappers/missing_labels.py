"""Partial-label benchmarks: hide a part of a dataset's labels.

Four constructions, all as :class:`MissingLabelDataset` modes:

========================  ===================================================
``'pal'``                 Zhang et al., partially annotated labels (PAL)
``'ppl'``                 Zhang et al., partially annotated positive labels
``'spl'``                 Zhang et al. / Cole et al., single positive label
``'missing_positives'``   COMIC's PLT-COCO / PLT-VOC missing rate
========================  ===================================================

See :class:`MissingLabelDataset` for the exact definitions and the text of
the papers they rest on.
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
    the wrapped dataset always stay unknown and are never counted. All
    samples are kept (an image may end with no known label; it then costs
    nothing to the losses).

    Modes (``q`` = ``keep_ratio``, ``r`` = ``missing_rate``):

    - ``'pal'`` -- partially annotated labels. Eligible: all known labels,
      positives and negatives alike; a fraction ``q`` of them is kept, the
      rest becomes unknown. Zhang et al. §V-A: *"for PAL, we randomly keep a
      certain proportion of labels, regardless of whether they are positive
      or negative. Therefore, in PAL setting, an image may correspond to
      several negative labels but zero positive labels."* So no positive
      (and no label at all) is guaranteed per image:
      ``min_positives=0`` by default. The paper's settings are
      PAL_0.3/0.6/0.9 (*"we keep 30%, 60%, and 90% of the labels"*).
    - ``'ppl'`` -- partially annotated positive labels. Eligible: the known
      positives; a fraction ``q`` is kept. Every negative becomes unknown.
      §V-A: *"For PPL, we retain a certain proportion of positive labels and
      discard the remaining negative labels."* At least one positive is kept
      per image that has one (``min_positives=1`` by default): the paper
      equates PPL with "at least one positive label per image" (§I: *"Most
      existing approaches require that there is at least one positive label
      per image, i.e., PPL or SPL setting"*; §V-B: AN, WAN and ROLE, which
      *"require that each image has at least one available positive
      label"*, run *"without any modification in the PPL setting"*, and
      only for PAL was that restriction removed).
    - ``'spl'`` -- single annotated positive label. One known positive per
      image, drawn uniformly, is kept; every other label becomes unknown.
      §V-A: *"for SPL, we keep only one positive label and discard all other
      labels"* (Cole et al.'s construction). Images without a known
      positive end with no known label.
    - ``'missing_positives'`` -- COMIC (Zhang et al., ICCV 2023) §4.1:
      *"The missing rate of PLT-COCO is 40%"*, *"PLT-VOC has the same
      missing rate setting"*. A fraction ``r`` of the known positives
      becomes missing; negatives are kept. No positive is guaranteed per
      image (``min_positives=0``; the paper does not say).

      What "missing" means: COMIC's labels are binary, §3.1: *"y ∈ {0,1}^C
      ... y_c = 0, 1 respectively means the category is unknown and
      present"*: a missing positive is written 0, the same value as a true
      negative, and the MFM loss trains every 0 as a negative while the RLC
      module may turn a 0 into a positive (Eq. 2, ``y_c = 0``). The released
      annotation files are binary as well. Following METHODS.md §5 the
      default here writes missing positives as unknown (-1) and keeps
      negatives as verified negatives (0), so a loss can tell them apart;
      ``missing_as='negative'`` writes them as 0, the paper's encoding (the
      data then carries false negatives, reported as
      ``wrong_label_fraction``).

    Sampling of the kept labels (``sampling``):

    - ``'exact'`` (default): exactly ``round(q * E)`` of the ``E`` eligible
      labels of the whole dataset are kept (for ``missing_positives``,
      ``round((1 - r) * E)``), a uniformly random subset. This is the
      papers' wording (*"We randomly select a certain proportion of labels
      to be retained and discard the rest"*); neither paper says whether
      the proportion holds per image or per dataset, and the number of kept
      labels of an image is not fixed (it is hypergeometric).
    - ``'bernoulli'``: each eligible label is kept independently with
      probability ``q`` (i.i.d. per label).

    With ``min_positives = m > 0``, first ``min(m, n_i)`` of the ``n_i``
    eligible positives of each image are kept (uniformly drawn), then the
    other eligible labels are drawn at the rate that keeps the overall
    expected (bernoulli) or exact (exact) count at the requested fraction.
    When the forced positives alone exceed the request (e.g. PPL with a
    small ``q`` on images with one or two positives), only they are kept,
    the realised fraction is larger than requested, and a warning says so
    (``report()['forced_exceeds_request']``).

    :meth:`report` adds the requested and realised kept fractions of
    positives and negatives (overall and per class), the number of images
    left without a known positive, and the settings.

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
