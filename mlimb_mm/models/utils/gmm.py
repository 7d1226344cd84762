"""Many independent two-component 1-D Gaussian mixtures, fitted at once in
torch, as ``sklearn.mixture.GaussianMixture(n_components=2, max_iter=10,
tol=1e-2, reg_covar=5e-4)`` fits each (BalanceMix, Song et al. 2024,
Eq. (6)-(7)): exact 2-means initialisation, per-mixture EM and stopping,
degenerate sets all clean. Design, numerics and cost: ``docs/gmm.md``.
"""
import math
from functools import partial
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ['GMMFit', 'fit_gmm_1d', 'fit_gmm_1d_padded', 'minmax_normalize']

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
    """Min-max normalise every set to [0, 1] (the DivideMix convention):
    ``(x - min_g) / (max_g - min_g)`` with the minimum
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
    """The permutation that sorts the entries by set, then by value (one
    radix-friendly int64 key: set id high, quantised position in the set's
    range low; ``docs/gmm.md``), the sorted set ids, and every set's minimum
    and span (``max - min``, 1 for a constant or empty set)."""
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
    mixture (``docs/gmm.md``: initialisation, EM, stopping rule,
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
            (:func:`minmax_normalize`, the DivideMix convention).
            Defaults to False (fit the values as given).
        min_count (int): Sets with fewer entries are degenerate (all clean).
            Defaults to 4.
        dtype (torch.dtype): Working precision. Defaults to float64 (as
            scikit-learn); float32 halves memory and time on GPUs.
        chunk_size (int): Entries per chunk of an EM pass (bounds the
            temporaries, keeps them in cache). Defaults to 2**18.
        num_bins (int, optional): Fit on per-set histograms of
            ``num_bins`` bins (:func:`_fit_binned`; 4096 bins on COCO-sized
            losses: posteriors within 3e-3 of the exact fit). None (default)
            fits the entries exactly. The binned fit works per entry in
            the values' float dtype, float32 at least (float16 and
            bfloat16 values are upcast).

    Returns:
        GMMFit: posteriors ``(E,)`` (in ``dtype``, or the per-entry dtype
        of the binned fit, on ``values``' device, flat) and per-mixture
        parameters.
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
        elif x.element_size() < 4:  # half precision can't tell 4096 bins
            x = x.float()
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
    """:func:`fit_gmm_1d` on per-set histograms (``num_bins`` given):
    exact count / sum / sum of squares per bin, the 2-means split between
    bins, EM with each bin's responsibilities at its mean, and the final
    posteriors at every entry's own value (``docs/gmm.md``)."""
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
