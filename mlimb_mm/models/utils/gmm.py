"""Many independent two-component 1-D Gaussian mixtures, fitted at once.

BalanceMix (Song et al. 2024) fits, after the warm-up epochs, one bi-modal
univariate GMM to each set of per-label BCE losses, Eq. (6)-(7): the
positives and the negatives of every class apart, ``2K`` mixtures; the
clean-label probability of a label is the posterior of the small-mean
component of its mixture, Eq. (8), and a label is clean when it is
``> 0.5``. The paper gives no EM settings; ``METHODS.md`` §3 fixes the
DivideMix convention: losses min-max normalised to [0, 1] per set, 2
components, ``max_iter=10``, ``tol=1e-2``, ``reg_covar=5e-4`` -- what
DivideMix obtains with scikit-learn's ``GaussianMixture``.

:func:`fit_gmm_1d` reproduces ``sklearn.mixture.GaussianMixture(
n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4)`` (default
``covariance_type='full'``, ``init_params='kmeans'``, ``n_init=1``) for
every mixture, vectorised in torch over all mixtures and entries (CPU or
GPU; Python loops only over EM iterations and fixed-size entry chunks):

- **Initialisation.** scikit-learn labels the data with ``KMeans(2,
  n_init=1)`` (k-means++ seeding drawn from ``random_state``, then Lloyd
  iterations) and takes weights, means and variances of the two hard
  clusters. Its result is a Lloyd fixed point that depends on the random
  seeding, so scikit-learn itself is not deterministic unless
  ``random_state`` is fixed. We compute instead the **globally optimal**
  1-D 2-means partition, exactly: the values of each set are sorted and
  the split between two consecutive distinct values that maximises the
  between-cluster sum of squares ``S_L^2 n / (n_L n_R)`` (centred sums,
  prefix sums) is taken. The optimum is itself a Lloyd fixed point; on
  bimodal loss data scikit-learn's k-means reaches exactly it for most
  seeds, never a better one (tests). Where scikit-learn ends elsewhere it
  is either stopped by its k-means tolerance (``1e-4 * var``) near the
  same fixed point, or in a worse local optimum -- typically in tiny sets
  whose top value, 1 after min-max normalisation, k-means++ likes to pick
  as a seed and Lloyd then keeps alone. The initial parameters follow
  scikit-learn's ``_initialize``: ``n_c = sum resp + 10 eps``, ``mu_c =
  sum resp x / n_c``, ``var_c = sum resp (x - mu_c)^2 / n_c +
  reg_covar``, ``w_c = n_c / n``.
- **EM** as ``GaussianMixture.fit``: at each iteration an E-step with the
  current parameters gives the lower bound (the mean log-likelihood) and
  the responsibilities ``exp(log_resp)`` of both components, then an
  M-step (``w_c = n_c / sum n``); a mixture stops after the iteration whose
  lower-bound change is ``< tol`` (absolute), at most ``max_iter``
  iterations, **each mixture on its own** (a stopped mixture's parameters
  are frozen while the others go on). A final E-step with the final
  parameters gives the posteriors, as ``fit`` followed by
  ``predict_proba``. Started from the same partition, our EM equals
  scikit-learn's to ``1e-9`` (posteriors, parameters, lower bound,
  iteration count; tests).
- The posterior returned is that of the component with the smaller mean
  (DivideMix: ``prob[:, gmm.means_.argmin()]``); the returned parameters
  are ordered small mean first.

Numerics: float64 by default (as scikit-learn). The data of each set are
centred on the set's mean before fitting (a GMM is translation-equivariant:
same posteriors; the means are shifted back), so the variance can be
accumulated in one pass as ``(S_rxx - 2 mu S_rx + mu^2 S_r) / n_c`` -- the
exact expansion of scikit-learn's ``sum r (x - mu)^2 / n_c`` -- without
cancellation trouble. The E-step evaluates the log-odds of the two
components, a quadratic in x, ``d = log w_1 N_1(x) - log w_0 N_0(x)``;
``r_1 = sigmoid(d)``, ``r_0 = sigmoid(-d)`` and ``log p(x) = log w_0
N_0(x) + softplus(d)``. The variance floor ``reg_covar`` keeps every
component proper.

Degenerate sets get an answer, never an exception or NaN: a set with fewer
than ``min_count`` entries (default 4) or whose values are all equal has
every entry clean (posterior 1), both means equal to the set's mean, both
variances ``var + reg_covar`` and weights ``(1, 0)``; it is flagged in
``degenerate``. scikit-learn raises for fewer than 2 entries and warns for
equal values.

Cost (COCO: N=82,783 x K=80 = 6.6M labels, 2K = 160 mixtures): one sort
of an int64 key (set id, quantised value) puts every set's entries
together and in order; every later pass runs over that order, so per-set
sums are ``segment_reduce`` over runs, and one scatter restores the input
order at the end. An EM iteration is one pass in chunks of ``chunk_size``
entries (3 gathers of per-set coefficients, ~12 elementwise operations
and one ``segment_reduce`` of 7 rows per chunk). Measured on one CPU
thread of a shared machine (``tools/benchmark_gmm.py``): ~3 s for all 160
mixtures against ~6-7 s for a loop of scikit-learn fits (1.8-2.2x), peak
memory ~0.7 GB above the inputs (~105 B per label, float64).
"""
import math
from functools import partial
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = [
    'GMMFit', 'fit_gmm_1d', 'fit_gmm_1d_padded', 'minmax_normalize',
    'label_gmm_groups', 'fit_label_gmms'
]

_LOG_2PI = math.log(2 * math.pi)


class GMMFit(NamedTuple):
    """The result of :func:`fit_gmm_1d` for ``E`` entries in ``M``
    mixtures. Parameters are ordered small mean first and are in the units
    of the fitted values (the normalised ones when ``normalize=True``)."""
    #: ``(E,)`` posterior of the small-mean component of each entry's
    #: mixture (Eq. (8): the clean-label probability); 1 in degenerate sets
    posterior: torch.Tensor
    #: ``(M, 2)`` component means, ascending
    means: torch.Tensor
    #: ``(M, 2)`` component variances (``reg_covar`` included)
    variances: torch.Tensor
    #: ``(M, 2)`` mixing weights
    weights: torch.Tensor
    #: ``(M,)`` EM iterations run (0 for degenerate sets)
    n_iter: torch.Tensor
    #: ``(M,)`` stopped by ``tol`` before ``max_iter`` ran out
    converged: torch.Tensor
    #: ``(M,)`` too small or constant: every entry clean
    degenerate: torch.Tensor
    #: ``(M,)`` the last lower bound (mean log-likelihood, before the last
    #: M-step, as scikit-learn's ``lower_bound_``); NaN for degenerate sets
    lower_bound: torch.Tensor
    #: ``(M,)`` entries per mixture
    counts: torch.Tensor


def _as_groups(values: torch.Tensor, groups,
               num_groups: Optional[int]) -> Tuple[torch.Tensor, int]:
    groups = torch.as_tensor(groups, device=values.device)
    if groups.dtype.is_floating_point or groups.dtype == torch.bool:
        raise TypeError('fit_gmm_1d: groups must be integer mixture ids, got '
                        f'{groups.dtype}.')
    groups = groups.reshape(-1).long()
    if groups.numel() != values.numel():
        raise ValueError(f'fit_gmm_1d: {values.numel()} values but '
                         f'{groups.numel()} group ids.')
    if groups.numel() and int(groups.min()) < 0:
        raise ValueError('fit_gmm_1d: group ids must be >= 0.')
    top = int(groups.max()) + 1 if groups.numel() else 0
    if num_groups is None:
        num_groups = top
    elif top > num_groups:
        raise ValueError(f'fit_gmm_1d: group id {top - 1} >= num_groups '
                         f'{num_groups}.')
    return groups, int(num_groups)


def minmax_normalize(values: torch.Tensor,
                     groups: torch.Tensor,
                     num_groups: Optional[int] = None) -> torch.Tensor:
    """Min-max normalise every set to [0, 1] (DivideMix convention,
    ``METHODS.md`` §3): ``(x - min_g) / (max_g - min_g)`` with the minimum
    and maximum of the entry's own set ``g``. A constant set becomes all
    zeros. Returns a new tensor of ``values``' (floating) dtype and shape.
    """
    values = torch.as_tensor(values)
    if not values.dtype.is_floating_point:
        values = values.double()
    flat = values.reshape(-1)
    groups, num_groups = _as_groups(flat, groups, num_groups)
    low = torch.full((num_groups, ), math.inf, dtype=flat.dtype,
                     device=flat.device)
    high = torch.full_like(low, -math.inf)
    low = low.scatter_reduce(0, groups, flat, 'amin')
    high = high.scatter_reduce(0, groups, flat, 'amax')
    span = high - low
    span = torch.where(span > 0, span, torch.ones_like(span))
    out = (flat - low[groups]) / span[groups]
    return out.reshape(values.shape)


def _sort_by_group(x: torch.Tensor, groups: torch.Tensor,
                   counts: torch.Tensor, num_groups: int):
    """The permutation that sorts the entries by set, then by value, the
    sorted set ids, and every set's minimum and span (``max - min``, 1 for
    a constant or empty set).

    One sort of an int64 key: the set id in the high bits and the value's
    position in its set's range, ``floor((x - min_g) / span_g * 2^b)``, in
    the low ``b = min(52, 62 - bits(M))`` bits (an integer sort is a radix
    sort, ~2.5x faster than a float sort on CPU). Values closer than
    ``2^-b`` of their set's range (``2^-52`` for up to 1024 sets) may come
    out in either order, which only moves such near-ties across a split
    (the split is defined on the sorted order, see
    :func:`_two_means_split`)."""
    gbits = max(1, int(num_groups - 1).bit_length())
    vbits = min(52, 62 - gbits)
    if vbits < 24:
        raise ValueError(f'fit_gmm_1d: too many mixtures ({num_groups}).')
    low = torch.full((num_groups, ), math.inf, dtype=x.dtype,
                     device=x.device).scatter_reduce(0, groups, x, 'amin')
    high = torch.full((num_groups, ), -math.inf, dtype=x.dtype,
                      device=x.device).scatter_reduce(0, groups, x, 'amax')
    span = high - low
    span = torch.where(span > 0, span, torch.ones_like(span))
    low = torch.where(counts > 0, low, torch.zeros_like(low))
    u = (x.double() - low.double().index_select(0, groups))
    u *= (float(2**vbits - 1) / span.double()).index_select(0, groups)
    key = u.long().clamp_(0, 2**vbits - 1)
    del u
    key += groups << vbits
    order = torch.argsort(key)
    del key
    sorted_groups = torch.repeat_interleave(
        torch.arange(num_groups, device=x.device), counts)
    return order, sorted_groups, low, span


def _two_means_split(xs: torch.Tensor, gs: torch.Tensor,
                     counts: torch.Tensor,
                     num_groups: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Globally optimal 1-D 2-means of every set, on entries sorted by set
    and value (``xs`` centred per set, ``gs`` their set ids). Returns the
    ``(E,)`` bool high-cluster membership (sorted order) and whether each
    set has a split at all (two distinct values)."""
    num = xs.numel()
    dev, dt = xs.device, xs.dtype
    starts = torch.cumsum(counts, 0) - counts
    # split after sorted position j: left = starts..j, right = j+1..end
    rank = torch.arange(num, device=dev)
    rank -= torch.repeat_interleave(starts, counts)
    n_left = rank.to(dt)
    n_left += 1
    n_all = torch.repeat_interleave(counts.to(dt), counts)
    # S_L: within-set prefix sums of the centred values (which sum to ~0
    # per set, so the global cumulative sum stays small)
    s_left = torch.cumsum(xs, 0)
    before = torch.zeros(num_groups, dtype=dt, device=dev)
    inner = (counts > 0) & (starts > 0)
    before[inner] = s_left[starts[inner] - 1]
    s_left -= torch.repeat_interleave(before, counts)
    # between-cluster sum of squares of centred data: S_L^2 n / (n_L n_R)
    score = s_left.square_()
    score *= n_all
    n_all -= n_left  # n_R
    score /= n_left.mul_(n_all.clamp_(min=1))
    del n_all, n_left
    valid = torch.zeros(num, dtype=torch.bool, device=dev)
    if num > 1:
        valid[:-1] = (gs[:-1] == gs[1:]) & (xs[:-1] < xs[1:])
    score.masked_fill_(~valid, -math.inf)
    best = torch.segment_reduce(score, 'max', lengths=counts, unsafe=True)
    best = torch.where(counts > 0, best, torch.full_like(best, -math.inf))
    has_split = torch.isfinite(best)
    at_best = valid & (score == best.index_select(0, gs))
    # the first best split of every set
    big = torch.full((num_groups, ), num, dtype=torch.long, device=dev)
    best_rank = big.scatter_reduce(0, gs[at_best], rank[at_best], 'amin')
    return rank > best_rank.index_select(0, gs), has_split


class _Params:
    """Per-set parameters of the two components (``(M,)`` tensors)."""

    def __init__(self, w0, w1, mu0, mu1, var0, var1):
        self.w0, self.w1, self.mu0, self.mu1 = w0, w1, mu0, mu1
        self.var0, self.var1 = var0, var1

    def quadratic(self):
        """``log w_c N(x | mu_c, var_c) = a_c x^2 + b_c x + c_c`` per set:
        ``(a, b, c)``, each ``(2, M)``."""
        w = torch.stack([self.w0, self.w1])
        mu = torch.stack([self.mu0, self.mu1])
        prec = 1.0 / torch.stack([self.var0, self.var1])
        a = -0.5 * prec
        b = mu * prec
        c = w.log() - 0.5 * (_LOG_2PI - prec.log()) - 0.5 * mu * mu * prec
        return a, b, c

    def where(self, cond, other: '_Params') -> '_Params':
        return _Params(*[
            torch.where(cond, a, b) for a, b in zip(self.tensors(),
                                                    other.tensors())
        ])

    def tensors(self):
        return (self.w0, self.w1, self.mu0, self.mu1, self.var0, self.var1)


def _m_step(stats: torch.Tensor, n_samples: Optional[torch.Tensor],
            reg_covar: float) -> _Params:
    """scikit-learn's ``_estimate_gaussian_parameters`` ('full', 1-D) from
    the sufficient statistics ``(7, M)``: ``[S_softplus, S_r0, S_r1, S_r0x,
    S_r1x, S_r0xx, S_r1xx]``. Weights are divided by ``n_samples`` (as in
    ``_initialize``) or by their sum (as in ``_m_step``)."""
    eps10 = 10 * torch.finfo(stats.dtype).eps
    out = []
    for c in (0, 1):
        s_r, s_rx, s_rxx = stats[1 + c], stats[3 + c], stats[5 + c]
        nk = s_r + eps10
        mu = s_rx / nk
        var = (s_rxx - 2 * mu * s_rx + mu * mu * s_r) / nk
        out.append((nk, mu, var.clamp(min=0) + reg_covar))
    (n0, mu0, v0), (n1, mu1, v1) = out
    total = n_samples.to(n0) if n_samples is not None else n0 + n1
    total = torch.where(total > 0, total, torch.ones_like(total))
    return _Params(n0 / total, n1 / total, mu0, mu1, v0, v1)


def _chunks(num: int, chunk_size: int):
    step = max(1, int(chunk_size))
    for s in range(0, num, step):
        yield slice(s, min(num, s + step))


def _log_odds(xc, x2c, gc, da, db, dc):
    """``d = log w_1 N_1(x) - log w_0 N_0(x)`` of a chunk of entries."""
    d = da.index_select(0, gc) * x2c
    d.addcmul_(db.index_select(0, gc), xc)
    d += dc.index_select(0, gc)
    return d


def _chunk_lengths(gs: torch.Tensor, num_groups: int, chunk_size: int):
    """Per chunk of the set-sorted entries: its slice and the ``(7, M)``
    run lengths of its sets (for ``segment_reduce``)."""
    return [(sl, torch.bincount(gs[sl], minlength=num_groups).expand(
        7, num_groups).contiguous())
            for sl in _chunks(gs.numel(), chunk_size)]


def _e_step_stats(xs: torch.Tensor, x2s: torch.Tensor, gs: torch.Tensor,
                  params: _Params, num_groups: int,
                  chunks) -> Tuple[torch.Tensor, Tuple]:
    """One E-step over all entries (in chunks): the sufficient statistics
    ``(7, M)`` of :func:`_m_step` (row 0: the per-set sums of
    ``softplus(d)``) and the quadratic ``(a_0, b_0, c_0)`` of component 0.

    With ``d = log w_1 N_1 - log w_0 N_0`` (a quadratic in x), the
    responsibilities are ``r_1 = sigmoid(d)``, ``r_0 = sigmoid(-d)`` (=
    scikit-learn's ``exp(log_resp)``) and ``log p(x) = log w_0 N_0(x) +
    softplus(d)``, whose per-set sum needs only ``sum softplus(d)`` per
    entry (the rest is per-set sums of x and x^2). The entries are sorted
    by set, so the per-set sums are ``segment_reduce`` over runs."""
    a, b, c = params.quadratic()
    da, db, dc = a[1] - a[0], b[1] - b[0], c[1] - c[0]
    stats = torch.zeros((7, num_groups), dtype=xs.dtype, device=xs.device)
    for sl, lengths in chunks:
        xc, x2c, gc = xs[sl], x2s[sl], gs[sl]
        d = _log_odds(xc, x2c, gc, da, db, dc)
        w = torch.empty((7, xc.numel()), dtype=xs.dtype, device=xs.device)
        w[0] = F.softplus(d, threshold=40.0)
        torch.sigmoid(d, out=w[2])
        torch.sigmoid(d.neg_(), out=w[1])
        torch.mul(w[1], xc, out=w[3])
        torch.mul(w[2], xc, out=w[4])
        torch.mul(w[1], x2c, out=w[5])
        torch.mul(w[2], x2c, out=w[6])
        stats += torch.segment_reduce(w, 'sum', lengths=lengths, axis=1)
    return stats, (a[0], b[0], c[0])


def _posterior_small(xs: torch.Tensor,
                     gs: torch.Tensor,
                     params: _Params,
                     small: torch.Tensor,
                     degenerate: torch.Tensor,
                     chunk_size: int,
                     x2s: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Final E-step, per entry and in chunks: the responsibility of
    component ``small[g]`` of the entry's set ``g``, in ``xs``' dtype; 1 in
    degenerate sets (and where it is NaN). ``x2s`` is ``xs**2`` when the
    caller has it (computed per chunk otherwise)."""
    a, b, c = params.quadratic()
    sign = torch.where(small, 1.0, -1.0).to(a)
    da, db, dc = [(sign * (t[1] - t[0])).to(xs.dtype) for t in (a, b, c)]
    out = torch.empty_like(xs)
    for sl in _chunks(xs.numel(), chunk_size):
        xc = xs[sl]
        x2c = xc * xc if x2s is None else x2s[sl]
        out[sl] = torch.sigmoid(_log_odds(xc, x2c, gs[sl], da, db, dc))
    return torch.where(degenerate.index_select(0, gs), torch.ones_like(out),
                       torch.nan_to_num(out, nan=1.0))


def fit_gmm_1d(values: torch.Tensor,
               groups: torch.Tensor,
               num_groups: Optional[int] = None,
               n_components: int = 2,
               max_iter: int = 10,
               tol: float = 1e-2,
               reg_covar: float = 5e-4,
               normalize: bool = False,
               min_count: int = 4,
               dtype: torch.dtype = torch.float64,
               chunk_size: int = 1 << 18,
               num_bins: Optional[int] = None) -> GMMFit:
    """Fit one two-component 1-D GMM to every set of values, all at once.

    The entries are given flat with the id of their mixture (the lean
    layout: the 2K loss sets of a dataset have very different sizes, a
    padded ``(M, L)`` layout would hold ``M * max size`` entries; see
    :func:`fit_gmm_1d_padded` for that layout). The fit follows
    ``GaussianMixture(n_components=2, max_iter, tol, reg_covar)`` per
    mixture (module docstring: initialisation, EM, stopping rule,
    degenerate sets).

    Args:
        values (Tensor): ``(E,)`` (any shape, flattened) values, e.g. the
            per-label BCE losses, Eq. (6). Must be finite.
        groups (Tensor): Integer mixture id ``in [0, M)`` of each entry,
            same number of elements.
        num_groups (int, optional): ``M``; ``max(groups) + 1`` when None.
        n_components (int): Must be 2 (the bi-modal GMM of Eq. (7)).
        max_iter (int): EM iterations at most. Defaults to 10.
        tol (float): A mixture stops when its lower bound changes by less.
            Defaults to 1e-2.
        reg_covar (float): Added to every variance. Defaults to 5e-4.
        normalize (bool): Min-max normalise every set to [0, 1] first
            (:func:`minmax_normalize`; DivideMix / ``METHODS.md`` §3).
            Defaults to False (fit the values as given).
        min_count (int): Sets with fewer entries are degenerate (all clean).
            Defaults to 4.
        dtype (torch.dtype): Working precision. Defaults to float64 (as
            scikit-learn); float32 halves memory and time on GPUs.
        chunk_size (int): Entries per chunk of an EM pass (bounds the
            temporaries, keeps them in cache). Defaults to 2**18.
        num_bins (int, optional): Fit on a histogram of every set instead of
            the entries (:func:`_fit_binned`): each set's range is cut into
            ``num_bins`` equal bins holding the exact count, sum and sum of
            squares of their entries; the k-means split is searched between
            bins and each EM step evaluates the responsibilities once per
            bin (at the bin's mean) instead of once per entry. The final
            posteriors are evaluated at every entry's own value. Cost: three
            ``bincount`` passes and one posterior pass over the entries,
            plus ``max_iter`` passes over ``M x num_bins`` bins -- no sort.
            Posteriors differ from the exact fit by ``O(1 / num_bins)``
            (4096 bins on COCO-sized losses: within 3e-3, decisions differ
            on 0.007% of the labels: tools/benchmark_gmm.py). None (default)
            fits the entries exactly. The binned fit works per entry in the
            values' own float dtype (posteriors in that dtype) and per bin
            in ``dtype``.

    Returns:
        GMMFit: posteriors ``(E,)`` (in ``dtype``, on ``values``' device,
        flat) and per-mixture parameters.
    """
    if n_components != 2:
        raise NotImplementedError(
            'fit_gmm_1d fits two-component mixtures only (BalanceMix '
            f'Eq. (7)), got n_components={n_components}.')
    if max_iter < 1:
        raise ValueError(f'fit_gmm_1d: max_iter must be >= 1, got '
                         f'{max_iter}.')
    values = torch.as_tensor(values)
    if num_bins is not None:
        x = values.reshape(-1)
        if not x.dtype.is_floating_point:
            x = x.to(dtype)
        groups, num_groups = _as_groups(x, groups, num_groups)
        counts = torch.bincount(groups, minlength=num_groups)
        return _fit_binned(x, groups, counts, num_groups, int(num_bins),
                           max_iter, tol, reg_covar, normalize, min_count,
                           dtype, chunk_size)
    x = values.reshape(-1).to(dtype)
    groups, num_groups = _as_groups(x, groups, num_groups)
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError('fit_gmm_1d: values must be finite.')
    device = x.device
    counts = torch.bincount(groups, minlength=num_groups)
    n_f = counts.to(dtype)
    safe_n = n_f.clamp(min=1)
    order, gs, low, span = _sort_by_group(x, groups, counts, num_groups)
    xs = x[order]
    del x, groups
    # centre every set on its mean (translation-equivariant, see the module
    # docstring); min-max normalisation (x - min) / span is folded in
    offset = torch.segment_reduce(xs, 'sum', lengths=counts,
                                  unsafe=True) / safe_n
    xs -= offset.index_select(0, gs)
    if normalize:
        xs /= span.index_select(0, gs)
        offset = (offset - low) / span  # the mean of the normalised set
    x2s = xs * xs
    sum_x = torch.segment_reduce(xs, 'sum', lengths=counts, unsafe=True)
    sum_x2 = torch.segment_reduce(x2s, 'sum', lengths=counts, unsafe=True)
    pop_var = (sum_x2 / safe_n - (sum_x / safe_n)**2).clamp(min=0)

    high, has_split = _two_means_split(xs, gs, counts, num_groups)
    degenerate = (counts < max(int(min_count), 2)) | ~has_split
    # hard k-means responsibilities -> scikit-learn's _initialize
    init = torch.zeros((7, num_groups), dtype=dtype, device=device)
    high = high.to(dtype)
    low_ = 1 - high
    for i, w in ((1, low_), (2, high), (3, low_ * xs), (4, high * xs),
                 (5, low_ * x2s), (6, high * x2s)):
        init[i] = torch.segment_reduce(w, 'sum', lengths=counts,
                                       unsafe=True)
    del high, low_
    params = _initial_params(init, n_f, pop_var, degenerate, reg_covar)
    chunks = _chunk_lengths(gs, num_groups, chunk_size)
    e_step = partial(_e_step_stats, xs, x2s, gs, num_groups=num_groups,
                     chunks=chunks)
    params, em = _run_em(params, degenerate, e_step, sum_x, sum_x2, n_f,
                         max_iter, tol, reg_covar)
    del e_step

    small = params.mu1 < params.mu0  # component 1 has the smaller mean
    post_sorted = _posterior_small(xs, gs, params, small, degenerate,
                                   chunk_size, x2s)
    posterior = torch.empty_like(post_sorted)
    posterior[order] = post_sorted
    del post_sorted, xs, x2s
    return _result(posterior, params, small, degenerate, em, offset,
                   offset, pop_var, reg_covar, counts)


def _initial_params(init: torch.Tensor, n_f: torch.Tensor,
                    pop_var: torch.Tensor, degenerate: torch.Tensor,
                    reg_covar: float) -> _Params:
    """scikit-learn's ``_initialize`` from the hard-partition sums
    ``init`` (rows as :func:`_m_step`); degenerate sets get one proper
    component, never used for the answer."""
    params = _m_step(init, n_f, reg_covar)
    half = torch.full_like(n_f, 0.5)
    zero = torch.zeros_like(n_f)
    safe = _Params(half, half, zero, zero, pop_var + reg_covar,
                   pop_var + reg_covar)
    return safe.where(degenerate, params)


def _run_em(params: _Params, degenerate: torch.Tensor, e_step,
            sum_x: torch.Tensor, sum_x2: torch.Tensor, n_f: torch.Tensor,
            max_iter: int, tol: float, reg_covar: float):
    """scikit-learn's EM loop, every mixture stopping on its own:
    ``e_step(params)`` gives the sufficient statistics ``(7, M)`` and the
    quadratic ``(a_0, b_0, c_0)`` of component 0. Returns the parameters
    and ``dict(n_iter, converged, lower)``."""
    num_groups = n_f.numel()
    device, dtype = n_f.device, n_f.dtype
    safe_n = n_f.clamp(min=1)
    active = ~degenerate
    converged = torch.zeros(num_groups, dtype=torch.bool, device=device)
    n_iter = torch.zeros(num_groups, dtype=torch.long, device=device)
    lower = torch.full((num_groups, ), -math.inf, dtype=dtype, device=device)
    for _ in range(int(max_iter)):
        if not bool(active.any()):
            break
        stats, (a0, b0, c0) = e_step(params)
        # mean log p(x): sum (log w_0 N_0(x) + softplus(d)) / n
        bound = (a0 * sum_x2 + b0 * sum_x + c0 * n_f + stats[0]) / safe_n
        params = _m_step(stats, None, reg_covar).where(active, params)
        change = bound - lower
        lower = torch.where(active, bound, lower)
        n_iter += active.long()
        stop = active & (change.abs() < tol)
        converged |= stop
        active &= ~stop
    return params, dict(n_iter=n_iter, converged=converged, lower=lower)


def _result(posterior: torch.Tensor, params: _Params, small: torch.Tensor,
            degenerate: torch.Tensor, em: dict, shift: torch.Tensor,
            set_mean: torch.Tensor, pop_var: torch.Tensor, reg_covar: float,
            counts: torch.Tensor) -> GMMFit:
    """The :class:`GMMFit`: parameters ordered small mean first, means
    shifted back by ``shift``; degenerate sets report their mean
    ``set_mean``, variance and weights ``(1, 0)``."""
    dtype, device = pop_var.dtype, pop_var.device

    def ordered(a, b):
        return torch.stack([torch.where(small, b, a),
                            torch.where(small, a, b)], 1)

    deg = degenerate[:, None]
    means = ordered(params.mu0, params.mu1) + shift[:, None]
    means = torch.where(deg, set_mean[:, None].expand_as(means), means)
    variances = torch.where(deg, (pop_var + reg_covar)[:, None].expand(
        len(pop_var), 2), ordered(params.var0, params.var1))
    weights = torch.where(deg, torch.tensor([1.0, 0.0], dtype=dtype,
                                            device=device),
                          ordered(params.w0, params.w1))
    lower = torch.where(degenerate, torch.full_like(em['lower'], math.nan),
                        em['lower'])
    return GMMFit(posterior, means, variances, weights, em['n_iter'],
                  em['converged'], degenerate, lower, counts)


def _fit_binned(x: torch.Tensor, groups: torch.Tensor, counts: torch.Tensor,
                num_groups: int, num_bins: int, max_iter: int, tol: float,
                reg_covar: float, normalize: bool, min_count: int,
                dtype: torch.dtype = torch.float64,
                chunk_size: int = 1 << 18) -> GMMFit:
    """:func:`fit_gmm_1d` on per-set histograms (``num_bins`` given).

    Every set's range ``[min, max]`` is cut into ``num_bins`` equal bins;
    three ``bincount`` passes give each bin's count, sum and sum of squares
    of the entries (``x - min``, divided by ``max - min`` when
    ``normalize``: a GMM is translation-equivariant), accumulated in
    float64: exact sufficient statistics of the entries in the bin. From
    there everything runs on the dense ``(M, num_bins)`` bins:

    - initialisation: the optimal 2-means split among the splits between
      bins (prefix sums over the bins, as :func:`_two_means_split`), then
      scikit-learn's ``_initialize`` from the exact sums of both sides;
    - EM: the responsibilities of a bin are evaluated at the bin's mean and
      multiply the bin's exact count / sum / sum of squares; the lower
      bound and the stopping rule are scikit-learn's (per mixture);
    - the posteriors: the final E-step at every entry's own value.

    Per entry that is ~20 elementwise passes (min / max, the bin, three
    bincounts, the final posterior) in the entries' own float dtype: no
    sort. Degenerate sets (fewer than ``min_count`` entries, or one
    distinct value) are all clean, as in the exact fit.
    """
    if num_bins < 2:
        raise ValueError(f'fit_gmm_1d: num_bins must be >= 2, got {num_bins}.')
    device = x.device
    n_f = counts.to(dtype)
    safe_n = n_f.clamp(min=1)
    low = torch.full((num_groups, ), math.inf, dtype=x.dtype,
                     device=device).scatter_reduce(0, groups, x, 'amin')
    high = torch.full((num_groups, ), -math.inf, dtype=x.dtype,
                      device=device).scatter_reduce(0, groups, x, 'amax')
    present = counts > 0
    if not bool((torch.isfinite(low) & torch.isfinite(high))[present].all()):
        raise ValueError('fit_gmm_1d: values must be finite.')
    low = torch.where(present, low, torch.zeros_like(low))
    span = torch.where(present, high - low, torch.zeros_like(low))
    has_range = span > 0
    span = torch.where(has_range, span, torch.ones_like(span))
    # the fitted value of every entry: x - min (/ span): its bin is
    # floor(position in the set's range * num_bins)
    values = x - low.index_select(0, groups)
    inv_span = (1.0 / span).to(x.dtype)
    if normalize:
        values *= inv_span.index_select(0, groups)
        key = values * num_bins
    else:
        key = values * (inv_span * num_bins).index_select(0, groups)
    key = key.long().clamp_(0, num_bins - 1)
    key += groups * num_bins
    size = num_groups * num_bins
    shape = (num_groups, num_bins)
    v64 = values.to(torch.float64, copy=True)  # squared in place below
    cnt = torch.bincount(key, minlength=size).to(dtype).view(shape)
    sx = torch.bincount(key, weights=v64, minlength=size).to(dtype).view(
        shape)
    v64.square_()
    sxx = torch.bincount(key, weights=v64, minlength=size).to(dtype).view(
        shape)
    del key, v64
    mean_b = sx / cnt.clamp(min=1)
    sum_x, sum_x2 = sx.sum(1), sxx.sum(1)
    pop_var = (sum_x2 / safe_n - (sum_x / safe_n)**2).clamp(min=0)

    # optimal 2-means split between bins: S_L^2 n / (n_L n_R), centred sums
    n_left = torch.cumsum(cnt, 1)
    s_left = torch.cumsum(sx, 1) - n_left * (sum_x / safe_n)[:, None]
    n_right = n_f[:, None] - n_left
    score = s_left.square() * n_f[:, None] / (n_left * n_right).clamp(
        min=1e-300)
    valid = (cnt > 0) & (n_right > 0.5)
    score = score.masked_fill(~valid, -math.inf)
    best = score.argmax(1)
    has_split = valid.any(1) & has_range
    degenerate = (counts < max(int(min_count), 2)) | ~has_split
    upper = (torch.arange(num_bins, device=device)[None, :] >
             best[:, None]).to(dtype)
    lower_ = 1 - upper
    init = torch.stack([
        torch.zeros_like(n_f), (lower_ * cnt).sum(1), (upper * cnt).sum(1),
        (lower_ * sx).sum(1), (upper * sx).sum(1), (lower_ * sxx).sum(1),
        (upper * sxx).sum(1)
    ])
    params = _initial_params(init, n_f, pop_var, degenerate, reg_covar)
    mean_b2 = mean_b * mean_b

    def e_step(p):
        a, b, c = p.quadratic()
        d = (a[1] - a[0])[:, None] * mean_b2 + (b[1] - b[0])[:, None] * \
            mean_b + (c[1] - c[0])[:, None]
        r1 = torch.sigmoid(d)
        r0 = 1 - r1
        stats = torch.stack([
            (cnt * F.softplus(d, threshold=40.0)).sum(1), (r0 * cnt).sum(1),
            (r1 * cnt).sum(1), (r0 * sx).sum(1), (r1 * sx).sum(1),
            (r0 * sxx).sum(1), (r1 * sxx).sum(1)
        ])
        return stats, (a[0], b[0], c[0])

    params, em = _run_em(params, degenerate, e_step, sum_x, sum_x2, n_f,
                         max_iter, tol, reg_covar)

    # the final E-step at every entry's own value
    small = params.mu1 < params.mu0
    posterior = _posterior_small(values, groups, params, small, degenerate,
                                 chunk_size)
    del values
    shift = (torch.zeros_like(low) if normalize else low).to(dtype)
    return _result(posterior, params, small, degenerate, em, shift,
                   sum_x / safe_n + shift, pop_var, reg_covar, counts)


def fit_gmm_1d_padded(values: torch.Tensor, mask: torch.Tensor,
                      **kwargs) -> GMMFit:
    """:func:`fit_gmm_1d` for the padded layout: ``values`` ``(M, L)`` with
    a bool ``mask`` ``(M, L)`` of the entries of mixture ``m`` (row ``m``).
    The returned ``posterior`` is ``(M, L)``, 0 where ``mask`` is False;
    the other fields are per row."""
    values = torch.as_tensor(values)
    mask = torch.as_tensor(mask, dtype=torch.bool, device=values.device)
    if values.dim() != 2 or mask.shape != values.shape:
        raise ValueError('fit_gmm_1d_padded: values and mask must be (M, L) '
                         f'of one shape, got {tuple(values.shape)} and '
                         f'{tuple(mask.shape)}.')
    rows = torch.arange(values.size(0), device=values.device)
    rows = rows[:, None].expand_as(mask)[mask]
    fit = fit_gmm_1d(values[mask], rows, values.size(0), **kwargs)
    posterior = torch.zeros(values.shape, dtype=fit.posterior.dtype,
                            device=values.device)
    posterior[mask] = fit.posterior
    return fit._replace(posterior=posterior)


def label_gmm_groups(observed: torch.Tensor) -> Tuple[torch.Tensor,
                                                      torch.Tensor]:
    """The 2K sets of Eq. (6) of an ``(N, K)`` tri-state label matrix:
    returns the flat indices into the ``(N, K)`` matrix of the observed
    labels (row-major) and their mixture ids, ``k`` for a positive of class
    k and ``K + k`` for a negative (unknown labels, -1, belong to no set).
    """
    observed = torch.as_tensor(observed)
    index = torch.nonzero(observed.reshape(-1) >= 0).squeeze(1)
    return index, _label_group_ids(observed).reshape(-1)[index]


def _label_group_ids(observed: torch.Tensor) -> torch.Tensor:
    """``(N, K)`` mixture id of every label of a tri-state ``(N, K)``
    matrix: ``k`` where it is positive, ``K + k`` elsewhere (the caller
    sets unknown labels apart)."""
    num_classes = observed.size(1)
    classes = torch.arange(num_classes, device=observed.device)
    return torch.where(observed == 1, classes, classes + num_classes)


def _fit_label_gmms_dense(losses: torch.Tensor, observed: torch.Tensor,
                          normalize: bool, unknown_value: float,
                          **kwargs) -> Tuple[torch.Tensor, GMMFit]:
    """:func:`fit_label_gmms` with ``num_bins``: the mixture id of every
    label is computed in the ``(N, K)`` layout (``k`` / ``K + k``; unknown
    labels go to a spare set ``2K`` whose fit is discarded) and the binned
    fit runs over all ``N x K`` entries -- no gather of the observed
    labels. The returned fit's ``posterior`` is flat over all ``N x K``
    labels (unknown ones ``unknown_value``) and its per-mixture fields have
    the ``2K`` mixtures."""
    num_classes = losses.size(1)
    groups = _label_group_ids(observed)
    groups = torch.where(observed >= 0, groups,
                         torch.full_like(groups, 2 * num_classes))
    fit = fit_gmm_1d(losses.reshape(-1), groups.reshape(-1),
                     2 * num_classes + 1, normalize=normalize, **kwargs)
    known = (observed >= 0).reshape(-1)
    clean = fit.posterior
    if not bool(known.all()):
        clean = torch.where(known, clean, torch.full_like(
            clean, float(unknown_value)))
    fit = GMMFit(clean, *[f[:2 * num_classes] for f in fit[1:]])
    return clean.view(losses.shape), fit


def fit_label_gmms(losses: torch.Tensor,
                   observed: torch.Tensor,
                   normalize: bool = True,
                   unknown_value: float = 0.0,
                   **kwargs) -> Tuple[torch.Tensor, GMMFit]:
    """Eq. (6)-(8) for a whole training set: the ``2K`` GMMs of the
    per-label BCE ``losses`` ``(N, K)`` grouped by :func:`label_gmm_groups`
    of ``observed`` (tri-state, ``(N, K)``), min-max normalised per set by
    default (``METHODS.md`` §3).

    Returns:
        tuple: the ``(N, K)`` clean-label probability ``p_G`` (Eq. (8);
        ``unknown_value`` for unknown labels, which belong to no set) and
        the :class:`GMMFit` (mixture ``k``: positives of class k, ``K + k``:
        negatives; its ``posterior`` is per observed label).
    """
    losses = torch.as_tensor(losses)
    observed = torch.as_tensor(observed, device=losses.device)
    if losses.shape != observed.shape or losses.dim() != 2:
        raise ValueError(f'fit_label_gmms: losses {tuple(losses.shape)} and '
                         f'labels {tuple(observed.shape)} must be one (N, K) '
                         'shape.')
    num_classes = losses.size(1)
    if kwargs.get('num_bins') is not None:
        return _fit_label_gmms_dense(losses, observed, normalize,
                                     unknown_value, **kwargs)
    index, groups = label_gmm_groups(observed)
    fit = fit_gmm_1d(losses.reshape(-1)[index], groups, 2 * num_classes,
                     normalize=normalize, **kwargs)
    clean = torch.full((losses.numel(), ), float(unknown_value),
                       dtype=fit.posterior.dtype, device=losses.device)
    clean[index] = fit.posterior
    return clean.view(losses.shape), fit
