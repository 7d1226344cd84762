"""Synthetic label noise of the BalanceMix paper (Song et al. 2024,
§Evaluation): mislabelling, random flipping and single positive labels.

The reading of Eq. (11) and the choices the paper leaves open are in
``docs/datasets.md``.
"""
import math
from typing import Dict, Optional, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger
from mmpretrain.registry import DATASETS
from scipy import sparse

from ..label_utils import NEGATIVE, POSITIVE, UNKNOWN, check_missing_as
from .base_label_wrapper import BaseLabelWrapper

NOISE_TYPES = ('mislabel', 'flip', 'single_positive')
EMPTY_IMAGE_MODES = ('drop', 'keep')


def check_noise_args(noise_type: str, rho: float,
                     empty_images: str = 'drop') -> None:
    """Validate the options of :class:`NoisyLabelDataset` (also used by the
    command-line tool before it reads any annotation file)."""
    if noise_type not in NOISE_TYPES:
        raise ValueError(f'NoisyLabelDataset: noise_type must be one of '
                         f'{NOISE_TYPES}, got noise_type={noise_type!r}.')
    try:
        ok = 0 <= float(rho) < 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError('NoisyLabelDataset: the noise rate rho must be in '
                         f'[0, 1), got rho={rho!r}.')
    if empty_images not in EMPTY_IMAGE_MODES:
        raise ValueError('NoisyLabelDataset: empty_images must be one of '
                         f'{EMPTY_IMAGE_MODES}, got '
                         f'empty_images={empty_images!r}.')


def requested_mislabel_matrix(class_counts: np.ndarray, rho: float,
                              classes=None) -> np.ndarray:
    """The ``(K, K)`` transition matrix of Eq. (11): off the diagonal
    ``rho_{i->j} = rho * N_j / (N - N_i)``, on it ``1 - rho`` (the label is
    kept). ``N_i`` is the number of positive labels of class i and ``N`` the
    number of positive labels of all classes, so every row sums to 1.

    Raises:
        ValueError: when ``rho > 0`` and a class with positives holds all
            ``N`` positive labels (every other class has zero positives):
            ``N - N_i = 0``, there is no class to mislabel it as.
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    num_classes = len(counts)
    total = counts.sum()
    rest = total - counts
    if rho > 0:
        bad = np.flatnonzero((counts > 0) & (rest <= 0))
        if len(bad):
            k = int(bad[0])
            name = f' ({classes[k]!r})' if classes is not None and \
                k < len(classes) else ''
            raise ValueError(
                f"NoisyLabelDataset: noise_type='mislabel' needs positive "
                f'labels of at least two classes: class {k}{name} holds all '
                f'N={int(total)} positive labels and the other '
                f'{num_classes - 1} classes have zero positives, so in '
                'Eq. (11) rho_{i->j} = rho * N_j / (N - N_i) the denominator '
                'N - N_i is 0 (there is no class to mislabel it as).')
    with np.errstate(divide='ignore', invalid='ignore'):
        matrix = rho * counts[None, :] / rest[:, None]
    matrix[~np.isfinite(matrix)] = 0.
    np.fill_diagonal(matrix, 1. - rho)
    return matrix


def calibrate_mislabel_weights(labels: np.ndarray, requested: np.ndarray,
                               rho: float, max_iter: int = 300,
                               tol: float = 1e-4
                               ) -> Tuple[np.ndarray, dict]:
    """Choice weights ``A`` so that collision-free mislabelling realises
    Eq. (11) on average.

    A positive label of class i in an image whose known negatives are ``E``
    is mislabelled with probability ``rho`` and then moved to ``j in E`` with
    probability ``A[i, j] / sum_{k in E} A[i, k]``. With ``A[i, j] = N_j``
    (re-drawing Eq. (11) on a collision) the classes that co-occur with i are
    under-chosen; here ``A`` is fitted so that the expected number of
    ``i -> j`` moves is ``rho_{i->j} * N_i`` for every cell: the
    minorise-maximise iteration of a Luce choice model (Hunter 2004),
    ``A <- A * requested / expected``, stopped when every cell is within
    ``tol`` (in probability) of Eq. (11) or when the expectation stops moving.

    When a cell is unreachable (j is positive in so many images of class i
    that there are too few images to move ``rho_{i->j} * N_i`` labels into)
    its weight grows until every image that can take the move does; the
    iteration then settles with the rest of row i close to the proportions
    of Eq. (11), each movable positive still moving with probability rho.
    The caller reports those cells.

    Returns:
        tuple: ``A`` (K, K), and a dict with the expected row-normalised
        matrix, the iterations and the largest deviation from Eq. (11).
    """
    num_classes = labels.shape[1]
    # identical label rows behave identically: work on the distinct rows
    # with their multiplicities
    rows, mult = np.unique(labels, axis=0, return_counts=True) \
        if len(labels) else (labels, np.zeros(0, np.int64))
    neg = (rows == NEGATIVE).astype(np.float64)
    img, cls = np.nonzero(rows == POSITIVE)
    weight_e = mult[img].astype(np.float64)
    counts = np.bincount(cls, weights=weight_e, minlength=num_classes)
    off_diagonal = requested * (counts[:, None] > 0)
    np.fill_diagonal(off_diagonal, 0.)

    def moves_and_denominators(weights):
        """Per positive (u, i): the sum of A[i, j] over the known negatives
        j of row u; per class pair: the expected moves per unit rho. Sums of
        non-negative terms only (the weights of an unreachable cell grow by
        orders of magnitude, a difference of large sums would lose the
        small ones): one (U, K) x (K, K) product and one sparse product per
        iteration."""
        denom = (neg @ weights.T)[img, cls]
        ok = denom > 0
        share = np.where(ok, weight_e / np.where(ok, denom, 1.), 0.)
        by_class = sparse.csr_matrix((share, (cls, img)),
                                     shape=(num_classes, len(rows)))
        return weights * (by_class @ neg), denom

    def expected_moves(weights):
        return moves_and_denominators(weights)[0]

    # A positive can move only if its image has a known negative of a class
    # with positives; the others lower the rate of their class (reported).
    movable = np.bincount(
        cls, weights=(moves_and_denominators(off_diagonal)[1] > 0) * weight_e,
        minlength=num_classes)
    # expected moves are rho * A * (...): fit the moves per unit rho
    target = off_diagonal * movable[:, None] / rho
    scale = np.maximum(counts, 1)[:, None] / rho  # -> probability units

    weights = off_diagonal.copy()
    expected = expected_moves(weights)
    deviation = float(np.max(np.abs(expected - target) / scale)) \
        if len(img) else 0.
    iters = 0
    while deviation >= tol and iters < max_iter:
        iters += 1
        with np.errstate(divide='ignore', invalid='ignore'):
            ratio = np.where(expected > 0, target / expected, 0.)
        weights = weights * ratio
        row_max = weights.max(axis=1, keepdims=True)
        weights = weights / np.where(row_max > 0, row_max, 1.)
        previous, expected = expected, expected_moves(weights)
        deviation = float(np.max(np.abs(expected - target) / scale))
        if np.max(np.abs(expected - previous) / scale) < tol / 4:
            break  # settled: what is left is unreachable
    with np.errstate(divide='ignore', invalid='ignore'):
        exp_matrix = rho * expected / counts[:, None]
    exp_matrix[counts == 0] = np.nan
    np.fill_diagonal(exp_matrix, 0.)
    diag = np.where(counts > 0, 1. - np.nansum(exp_matrix, axis=1), np.nan)
    np.fill_diagonal(exp_matrix, diag)
    info = dict(
        iterations=iters,
        converged=bool(deviation < tol),
        tolerance=tol,
        max_abs_deviation=deviation,
        movable_positives=movable.astype(np.int64),
        expected_matrix=exp_matrix)
    return weights, info


def _sample_targets(weights: np.ndarray, labels: np.ndarray,
                    img: np.ndarray, cls: np.ndarray,
                    rng: np.random.Generator,
                    chunk: int = 65536) -> np.ndarray:
    """For each positive ``(img[e], cls[e])`` one new class among the known
    negatives of its image, with probability ``weights[cls[e], j]``
    normalised over them; -1 where no known negative has weight."""
    out = np.full(len(img), -1, dtype=np.int64)
    draws = rng.random(len(img))
    for start in range(0, len(img), chunk):
        sl = slice(start, start + chunk)
        w = weights[cls[sl]] * (labels[img[sl]] == NEGATIVE)
        cum = np.cumsum(w, axis=1)
        total = cum[:, -1]
        # the first j with cum[j] > u * total (so w[j] > 0)
        pick = (cum <= (draws[sl] * total)[:, None]).sum(axis=1)
        pick = np.minimum(pick, w.shape[1] - 1)
        out[sl] = np.where(total > 0, pick, -1)
    return out


def _rows_to_json(matrix: np.ndarray, digits: int = 6):
    """A float matrix as nested lists, NaN as None (valid JSON)."""
    out = []
    for row in np.atleast_1d(matrix):
        if np.ndim(row):
            out.append(_rows_to_json(row, digits))
        else:
            out.append(None if not np.isfinite(row) else round(float(row),
                                                                digits))
    return out


def _cells_off_eq11(expected: np.ndarray, requested: np.ndarray,
                    tol: float, top: int = 20):
    """Off-diagonal cells whose calibrated expectation is off Eq. (11) by
    more than ``max(10 * tol, 1e-3)``: below it, the unreachable moves (j is
    positive in too many images of i); above it, the rest of their rows,
    which take up the share so that the row still moves rho. Returns
    ``(num_below, num_above, the top cells by deviation)``."""
    dev = np.abs(np.nan_to_num(expected - requested))
    np.fill_diagonal(dev, 0.)
    bad = np.argwhere(dev > max(10 * tol, 1e-3))
    order = np.argsort(-dev[bad[:, 0], bad[:, 1]], kind='stable')
    below = int(sum(expected[i, j] < requested[i, j] for i, j in bad))
    cells = [
        dict(source=int(i), target=int(j), requested=float(requested[i, j]),
             expected=float(expected[i, j])) for i, j in bad[order[:top]]
    ]
    return below, int(len(bad) - below), cells


def _rate(num, den) -> Optional[float]:
    return float(num) / float(den) if den else None


@DATASETS.register_module()
class NoisyLabelDataset(BaseLabelWrapper):
    """Inject the synthetic label noise of BalanceMix (Song et al. 2024,
    §Evaluation) into a multi-label dataset.

    Unknown (-1) labels of the wrapped dataset stay unknown in every mode.
    The clean labels travel as ``gt_tristate_clean`` (see
    :class:`BaseLabelWrapper`).

    - ``'mislabel'`` (class-dependent, Eq. (11)): each positive label of
      class i is, with probability ``rho``, moved to another class j (label
      i becomes 0, label j becomes 1) with ``rho_{i->j} = rho * N_j / (N -
      N_i)``, ``N_i`` the positive labels of class i and ``N`` those of all
      classes. The new class is drawn among the image's known negatives with
      weights fitted once (:func:`calibrate_mislabel_weights`) so that the
      expected moves match Eq. (11) in every cell.
    - ``'flip'`` (class-independent): every known label is flipped
      independently with probability ``rho``.
    - ``'single_positive'`` (Kim et al. 2022): one positive per image,
      chosen uniformly, is kept; all other labels become unknown (or
      negative, ``missing_as='negative'``); images without a positive are
      dropped by default (``empty_images``). ``rho`` is not used.

    :meth:`report` gives the requested and realised rates (overall, per
    class) and, for mislabel, the realised ``K x K`` matrix of moves next to
    Eq. (11)'s. Collisions, unreachable cells, merged moves and the reading
    of N are discussed in ``docs/datasets.md``.

    Args:
        dataset (BaseDataset | dict): The dataset to corrupt, or its config.
        noise_type (str): ``'mislabel'``, ``'flip'`` or
            ``'single_positive'``. Defaults to ``'mislabel'``.
        rho (float): Noise rate in ``[0, 1)``. Defaults to 0.4.
        seed (int): Seed of the corruption. Defaults to 0.
        empty_images (str): single positive only: ``'drop'`` or ``'keep'``
            the images without a positive label. Defaults to ``'drop'``.
        missing_as (str): single positive only: the other labels become
            ``'unknown'`` (-1, default) or ``'negative'`` (0: the "assume
            negative" encoding of Kim et al. 2022, which BalanceMix trains
            on and re-labels with tau = 0.55).
        calibration_iters (int): Most iterations of the mislabel weight fit.
            Defaults to 300.
        calibration_tol (float): The fit stops when every expected cell is
            within this probability of Eq. (11). Defaults to 1e-4.
        lazy_init (bool): Defer building until first use.
            Defaults to False.
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 noise_type: str = 'mislabel',
                 rho: float = 0.4,
                 seed: int = 0,
                 empty_images: str = 'drop',
                 missing_as: str = 'unknown',
                 calibration_iters: int = 300,
                 calibration_tol: float = 1e-4,
                 lazy_init: bool = False):
        check_noise_args(noise_type, rho, empty_images)
        check_missing_as('NoisyLabelDataset', missing_as,
                         noise_type == 'single_positive',
                         "noise_type='single_positive'")
        self.missing_as = missing_as
        self.noise_type = noise_type
        self.rho = float(rho)
        self.empty_images = empty_images
        self.calibration_iters = int(calibration_iters)
        self.calibration_tol = float(calibration_tol)
        self._stats: Dict = {}
        super().__init__(dataset, seed=seed, lazy_init=lazy_init)

    # -- builders -----------------------------------------------------------
    def build_labels(self, labels, rng):
        labels = np.asarray(labels, dtype=np.int8)
        if self.noise_type == 'mislabel':
            return self._mislabel(labels, rng)
        if self.noise_type == 'flip':
            return self._flip(labels, rng)
        return self._single_positive(labels, rng)

    def _mislabel(self, labels, rng):
        num, num_classes = labels.shape
        classes = self._metainfo.get('classes')
        pos = labels == POSITIVE
        counts = pos.sum(0).astype(np.int64)
        requested = requested_mislabel_matrix(counts, self.rho, classes)
        stats = dict(requested_matrix=requested, class_counts=counts)
        new = labels.copy()
        moves = np.zeros((num_classes, num_classes), np.int64)
        merged = 0
        unmovable = np.zeros(num_classes, np.int64)
        if self.rho > 0 and pos.any():
            weights, calib = calibrate_mislabel_weights(
                labels, requested, self.rho, self.calibration_iters,
                self.calibration_tol)
            stats['calibration'] = calib
            below = _cells_off_eq11(calib['expected_matrix'], requested,
                                    calib['tolerance'])[0]
            if below:
                MMLogger.get_current_instance().warning(
                    f'NoisyLabelDataset: {below} of {num_classes**2} cells '
                    'of the Eq. (11) mislabel matrix cannot be reached '
                    'without moving a label onto a class already positive '
                    'in the image (the other moves of their rows take up '
                    'the share); see report()["mislabel"]["cells_off_eq11"]'
                    '.')
            img, cls = np.nonzero(pos)
            chosen = rng.random(len(img)) < self.rho
            img, cls = img[chosen], cls[chosen]
            targets = _sample_targets(weights, labels, img, cls, rng)
            stuck = targets < 0
            unmovable = np.bincount(cls[stuck], minlength=num_classes)
            img, cls, targets = img[~stuck], cls[~stuck], targets[~stuck]
            # targets are known negatives of the source image, never one of
            # its positives: clearing the sources first then setting the
            # targets cannot undo a move.
            new[img, cls] = NEGATIVE
            new[img, targets] = POSITIVE
            moves = np.bincount(cls * num_classes + targets,
                                minlength=num_classes**2).reshape(
                                    num_classes, num_classes)
            pairs = img * num_classes + targets
            merged = int(len(pairs) - len(np.unique(pairs)))
        stats.update(moves=moves, merged=merged, unmovable_drawn=unmovable)
        self._stats = stats
        return np.arange(num), new

    def _flip(self, labels, rng):
        known = labels != UNKNOWN
        flips = (rng.random(labels.shape) < self.rho) & known
        new = np.where(flips, (1 - labels).astype(np.int8), labels)
        self._stats = dict(
            pos=(labels == POSITIVE).sum(0),
            neg=(labels == NEGATIVE).sum(0),
            pos_flipped=(flips & (labels == POSITIVE)).sum(0),
            neg_flipped=(flips & (labels == NEGATIVE)).sum(0))
        return np.arange(len(labels)), new.astype(np.int8)

    def _single_positive(self, labels, rng):
        pos = labels == POSITIVE
        keys = rng.random(labels.shape)
        keys[~pos] = -1.
        keep = np.argmax(keys, axis=1)
        has_pos = pos.any(axis=1)
        fill = NEGATIVE if self.missing_as == 'negative' else UNKNOWN
        new = np.full(labels.shape, fill, dtype=np.int8)
        rows = np.flatnonzero(has_pos)
        new[rows, keep[rows]] = POSITIVE
        if self.empty_images == 'drop':
            indices = rows
        else:
            indices = np.arange(len(labels))
        self._stats = dict(
            pos=pos.sum(0),
            kept=(new[indices] == POSITIVE).sum(0),
            num_empty=int((~has_pos).sum()),
            num_single=int(((new[indices] == POSITIVE).sum(1) == 1).sum()),
            neg_hidden=int((labels[indices] == NEGATIVE).sum()))
        return indices, new[indices]

    # -- report -------------------------------------------------------------
    def builder_report(self) -> dict:
        self._fully_initialized or self.full_init()
        report = dict(noise_type=self.noise_type, rho=self.rho)
        method = getattr(self, f'_report_{self.noise_type}')
        report[self.noise_type] = method()
        return report

    def _report_mislabel(self) -> dict:
        stats = self._stats
        counts = stats['class_counts']
        moves = stats['moves']
        requested = stats['requested_matrix']
        total = int(counts.sum())
        moved = moves.sum(1)
        with np.errstate(divide='ignore', invalid='ignore'):
            realised = moves / counts[:, None]
        np.fill_diagonal(realised, 1. - moved / np.maximum(counts, 1))
        realised[counts == 0] = np.nan
        req = requested.copy()
        req[counts == 0] = np.nan
        calib = stats.get('calibration')
        out = dict(
            definition=(
                'Eq. (11): rho_{i->j} = rho * N_j / (N - N_i), N_i = positive '
                'labels of class i, N = positive labels of all classes; '
                'matrix[i][j] = moves i->j / N_i, diagonal = kept fraction'),
            requested_rate=self.rho,
            realised_rate=_rate(moved.sum(), total),
            realised_rate_std_error=math.sqrt(
                self.rho * (1 - self.rho) / total) if total else None,
            num_positives=total,
            num_moved=int(moved.sum()),
            requested_rate_per_class=[
                self.rho if c else None for c in counts],
            realised_rate_per_class=[
                _rate(m, c) for m, c in zip(moved, counts)],
            num_merged_moves=stats['merged'],
            num_drawn_without_target=int(stats['unmovable_drawn'].sum()),
            requested_matrix=_rows_to_json(req),
            realised_matrix=_rows_to_json(realised),
            move_counts=moves.tolist(),
        )
        if calib is not None:
            movable = calib['movable_positives']
            expected = calib['expected_matrix']
            below, above, cells = _cells_off_eq11(expected, req,
                                                  calib['tolerance'])
            # positives whose image has no known negative of a class with
            # positives cannot move: the rate to expect is below rho then
            out['num_unmovable_positives'] = int(total - movable.sum())
            out['expected_rate'] = float(self.rho * movable.sum() / total)
            out['expected_matrix'] = _rows_to_json(expected)
            out['calibration'] = dict(
                iterations=calib['iterations'],
                converged=calib['converged'],
                tolerance=calib['tolerance'],
                max_abs_deviation=calib['max_abs_deviation'])
            out['num_cells_below_eq11'] = below
            out['num_cells_above_eq11'] = above
            out['cells_off_eq11'] = cells
        return out

    def _report_flip(self) -> dict:
        s = self._stats
        pos, neg = s['pos'], s['neg']
        pf, nf = s['pos_flipped'], s['neg_flipped']
        return dict(
            requested_rate=self.rho,
            requested_positive_rate=self.rho,
            requested_negative_rate=self.rho,
            realised_rate=_rate(pf.sum() + nf.sum(), pos.sum() + neg.sum()),
            realised_positive_rate=_rate(pf.sum(), pos.sum()),
            realised_negative_rate=_rate(nf.sum(), neg.sum()),
            num_positives=int(pos.sum()),
            num_negatives=int(neg.sum()),
            num_positives_flipped=int(pf.sum()),
            num_negatives_flipped=int(nf.sum()),
            realised_positive_rate_per_class=[
                _rate(f, n) for f, n in zip(pf, pos)],
            realised_negative_rate_per_class=[
                _rate(f, n) for f, n in zip(nf, neg)],
        )

    def _report_single_positive(self) -> dict:
        s = self._stats
        pos, kept = s['pos'], s['kept']
        return dict(
            empty_images=self.empty_images,
            missing_as=self.missing_as,
            requested_positives_per_image=1,
            num_images_with_one_positive=s['num_single'],
            num_images_without_positive=s['num_empty'],
            num_positives=int(pos.sum()),
            num_positives_kept=int(kept.sum()),
            hidden_positive_rate=_rate(pos.sum() - kept.sum(), pos.sum()),
            num_negatives_hidden=s['neg_hidden'],
            kept_positive_rate_per_class=[
                _rate(k, p) for k, p in zip(kept, pos)],
        )

    def __repr__(self):
        state = 'built' if self._fully_initialized else 'lazy'
        return (f'NoisyLabelDataset({state}, noise_type={self.noise_type!r}, '
                f'rho={self.rho}, seed={self.seed}, '
                f'dataset={type(self.dataset).__name__})')
