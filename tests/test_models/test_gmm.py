"""The vectorised 1-D GMMs of BalanceMix (Eq. (6)-(8)) against
scikit-learn's GaussianMixture with the DivideMix recipe."""
import warnings

import numpy as np
import pytest
import torch

from mlimb_mm.models.utils import (fit_gmm_1d, fit_gmm_1d_padded,
                                   fit_label_gmms, label_gmm_groups,
                                   minmax_normalize)

sklearn_mixture = pytest.importorskip('sklearn.mixture')

SETTINGS = dict(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4)


def sklearn_fit(x, **kwargs):
    """DivideMix: fit, then the posterior of the component with the
    smaller mean."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # ConvergenceWarning
        gmm = sklearn_mixture.GaussianMixture(**SETTINGS, **kwargs).fit(
            x[:, None])
    return gmm.predict_proba(x[:, None])[:, gmm.means_.argmin()], gmm


def ours(x, **kwargs):
    return fit_gmm_1d(torch.as_tensor(x, dtype=torch.float64),
                      torch.zeros(len(x), dtype=torch.long), **kwargs)


def brute_force_two_means(x):
    """Globally optimal 1-D 2-means by trying every split of the sorted
    values (sum of squared errors computed directly, O(n^2))."""
    s = np.sort(x)
    best, best_t = np.inf, None
    for j in range(1, len(s)):
        if s[j - 1] == s[j]:
            continue
        left, right = s[:j], s[j:]
        sse = ((left - left.mean())**2).sum() + (
            (right - right.mean())**2).sum()
        if sse < best:
            best, best_t = sse, s[j - 1]
    return x > best_t


def init_from_partition(x, high):
    """scikit-learn's _initialize for hard responsibilities."""
    resp = np.stack([~high, high], 1).astype(np.float64)
    nk = resp.sum(0) + 10 * np.finfo(np.float64).eps
    means = resp.T @ x / nk
    var = np.array([(resp[:, k] * (x - means[k])**2).sum() / nk[k]
                    for k in range(2)]) + SETTINGS['reg_covar']
    return dict(weights_init=nk / len(x), means_init=means[:, None],
                precisions_init=(1 / var)[:, None, None])


def loss_like(rng, num, noise):
    """Per-label BCE losses: clean labels confidently fitted, noisy ones
    (fraction ``noise``) not (the memorisation effect)."""
    noisy = rng.random(num) < noise
    conf = np.where(noisy, rng.beta(1.5, 4.0, num), rng.beta(8.0, 1.5, num))
    return -np.log(np.clip(conf, 1e-7, 1.0)), noisy


def generated_sets(seed=0):
    rng = np.random.default_rng(seed)
    return {
        'separated':
        np.concatenate([rng.normal(0, 0.1, 500),
                        rng.normal(3, 0.3, 200)]),
        'overlapping':
        np.concatenate([rng.normal(0, 1, 500),
                        rng.normal(1.5, 1, 300)]),
        'heavy overlap':
        np.concatenate([rng.normal(0, 1, 400),
                        rng.normal(0.8, 1.3, 400)]),
        'skewed':
        np.concatenate([rng.exponential(0.05, 3000),
                        rng.uniform(0.3, 1, 400)]),
        'rare mode':
        np.concatenate([rng.beta(1, 20, 5000),
                        rng.beta(5, 2, 100)]),
        'unimodal':
        rng.exponential(1.0, 1000),
        'losses 20% noise':
        loss_like(rng, 2000, 0.2)[0],
    }


@pytest.mark.parametrize('name', list(generated_sets()))
def test_em_equals_sklearn_from_the_same_initialisation(name):
    """With scikit-learn started from our k-means partition (the exact
    global 2-means optimum, brute-forced here) the EM must agree to
    rounding: same updates, same per-mixture stopping rule."""
    x = generated_sets()[name]
    for data in (x, (x - x.min()) / (x.max() - x.min())):
        fit = ours(data)
        high = brute_force_two_means(data)
        expected, gmm = sklearn_fit(data, **init_from_partition(data, high))
        np.testing.assert_allclose(fit.posterior.numpy(), expected,
                                   atol=1e-9, rtol=0)
        assert int(fit.n_iter[0]) == gmm.n_iter_
        assert bool(fit.converged[0]) == gmm.converged_
        order = np.argsort(gmm.means_[:, 0])
        np.testing.assert_allclose(fit.means[0].numpy(),
                                   gmm.means_[order, 0], rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_allclose(fit.variances[0].numpy(),
                                   gmm.covariances_[order, 0, 0],
                                   rtol=1e-9)
        np.testing.assert_allclose(fit.weights[0].numpy(),
                                   gmm.weights_[order], rtol=1e-9)
        assert float(fit.lower_bound[0]) == pytest.approx(
            gmm.lower_bound_, rel=1e-10, abs=1e-12)


def test_split_is_the_global_two_means_optimum_sklearn_kmeans_reaches():
    """Our initial partition is the brute-force optimum, and scikit-learn's
    own k-means (random k-means++ seeding, Lloyd iterations stopped at a
    tolerance) reaches it for most seeds, never a better one."""
    from sklearn.cluster import KMeans

    from mlimb_mm.models.utils.gmm import _sort_by_group, _two_means_split
    for name, x in generated_sets(1).items():
        xt = torch.as_tensor(x - x.mean())
        groups = torch.zeros(len(x), dtype=torch.long)
        counts = torch.tensor([len(x)])
        order, gs, _, _ = _sort_by_group(xt, groups, counts, 1)
        high_sorted, has_split = _two_means_split(xt[order], gs, counts, 1)
        high = torch.empty_like(high_sorted)
        high[order] = high_sorted
        assert bool(has_split[0])
        np.testing.assert_array_equal(high.numpy(),
                                      brute_force_two_means(x), name)
        ours_high = high.numpy()
        inertia = sum(((x[m] - x[m].mean())**2).sum()
                      for m in (ours_high, ~ours_high))
        hits = 0
        for seed in range(5):
            km = KMeans(2, n_init=1, random_state=seed).fit(x[:, None])
            km_high = km.labels_ == np.argmax(km.cluster_centers_[:, 0])
            hits += np.array_equal(km_high, ours_high)
            # never worse than scikit-learn's (local) optimum
            assert inertia <= km.inertia_ * (1 + 1e-9), (name, seed)
        # scikit-learn's k-means stops at a tolerance, from random seeds;
        # it lands exactly on our partition for some of them
        assert hits >= 1, name


def test_matches_default_sklearn_on_well_separated_data():
    rng = np.random.default_rng(3)
    for trial in range(4):
        x = np.concatenate([
            rng.normal(0.1 * trial, 0.05, 400),
            rng.normal(2 + trial, 0.2, 60 + 40 * trial)
        ])
        fit = ours(x)
        for seed in range(3):
            expected, _ = sklearn_fit(x, random_state=seed)
            assert np.abs(fit.posterior.numpy() - expected).max() < 1e-3


def test_same_clean_decisions_as_sklearn_on_realistic_losses():
    """Min-max normalised loss sets as BalanceMix fits them: the clean /
    noisy decisions agree with scikit-learn's (default k-means init),
    and where they do not, scikit-learn disagrees with itself across
    seeds at least as much."""
    rng = np.random.default_rng(4)
    agree, total = 0, 0
    for num, noise in [(300, 0.2), (2000, 0.05), (2000, 0.4), (3000, 0.3),
                       (5000, 0.02), (1000, 0.1)]:
        losses, noisy = loss_like(rng, num, noise)
        fit = fit_gmm_1d(torch.as_tensor(losses),
                         torch.zeros(num, dtype=torch.long), normalize=True)
        post = fit.posterior.numpy()
        x = (losses - losses.min()) / (losses.max() - losses.min())
        refs = np.stack([sklearn_fit(x, random_state=s)[0] for s in range(4)])
        diff = np.abs(refs - post).max(1)
        spread = np.abs(refs[:, None] - refs[None]).max()
        assert diff.min() < 1e-6 or diff.min() <= spread + 1e-9
        agree += ((refs[0] > 0.5) == (post > 0.5)).sum()
        total += num
        # the GMM does separate the noisy labels
        assert ((post > 0.5) == ~noisy).mean() > 0.9
    assert agree / total > 0.999


def test_many_mixtures_at_once_equal_one_at_a_time(device):
    sets = list(generated_sets(2).values())
    rng = np.random.default_rng(0)
    values = np.concatenate(sets)
    groups = np.concatenate([np.full(len(s), i) for i, s in enumerate(sets)])
    perm = rng.permutation(len(values))  # interleave the sets
    joint = fit_gmm_1d(torch.as_tensor(values[perm], device=device),
                       torch.as_tensor(groups[perm], device=device))
    assert joint.posterior.device.type == device.type
    joint = type(joint)(*[f.cpu() for f in joint])
    posterior = np.empty(len(values))
    posterior[perm] = joint.posterior.numpy()
    # other summation orders on a GPU: float64 rounding only
    atol = 1e-12 if device.type == 'cpu' else 1e-9
    iters = set()
    for i, s in enumerate(sets):
        alone = fit_gmm_1d(torch.as_tensor(s, device=device),
                           torch.zeros(len(s), dtype=torch.long,
                                       device=device))
        alone = type(alone)(*[f.cpu() for f in alone])
        np.testing.assert_allclose(posterior[groups == i],
                                   alone.posterior.numpy(), atol=atol)
        for field in ('means', 'variances', 'weights', 'lower_bound'):
            np.testing.assert_allclose(
                getattr(joint, field)[i].numpy(),
                getattr(alone, field)[0].numpy(), rtol=1e-10, atol=atol)
        assert int(joint.n_iter[i]) == int(alone.n_iter[0])
        iters.add(int(alone.n_iter[0]))
    # the sets stop at different iterations: each mixture has its own rule
    assert len(iters) > 1


def test_max_iter_and_tol_are_per_mixture():
    x = generated_sets()['heavy overlap']
    for max_iter, tol in [(1, 1e-2), (3, 1e-9), (10, 1e-1)]:
        fit = ours(x, max_iter=max_iter, tol=tol)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            gmm = sklearn_mixture.GaussianMixture(
                2, max_iter=max_iter, tol=tol, reg_covar=5e-4,
                **init_from_partition(x, brute_force_two_means(x))).fit(
                    x[:, None])
        expected = gmm.predict_proba(x[:, None])[:, gmm.means_.argmin()]
        assert int(fit.n_iter[0]) == gmm.n_iter_
        np.testing.assert_allclose(fit.posterior.numpy(), expected,
                                   atol=1e-9)


def test_degenerate_sets_are_all_clean_without_nan():
    values = torch.tensor([
        0.3, 0.3, 0.3, 0.3, 0.3,  # set 0: constant
        1.0, 5.0, 9.0,  # set 1: three entries (< min_count)
        2.0,  # set 2: one entry
        0.0, 0.0, 1.0, 1.0, 0.0, 1.0,  # set 3: two values, fine
    ], dtype=torch.float64)
    groups = torch.tensor([0] * 5 + [1] * 3 + [2] + [3] * 6)
    for normalize in (False, True):
        fit = fit_gmm_1d(values, groups, num_groups=5, normalize=normalize)
        assert fit.degenerate.tolist() == [True, True, True, False, True]
        assert torch.isfinite(fit.posterior).all()
        assert fit.posterior[:9].eq(1).all()
        np.testing.assert_allclose(fit.posterior[9:].numpy(),
                                   [1, 1, 0, 0, 1, 0], atol=1e-12)
        assert fit.n_iter[:3].eq(0).all() and fit.n_iter[4] == 0
        assert fit.counts.tolist() == [5, 3, 1, 6, 0]
        for field in ('means', 'variances', 'weights'):
            assert torch.isfinite(getattr(fit, field)[:4]).all()
        assert fit.weights[0].tolist() == [1.0, 0.0]
    # fewer than 4 entries is degenerate, 4 is not (min_count)
    four = fit_gmm_1d(torch.tensor([0., 0.1, 2., 2.1]), torch.zeros(4).long())
    assert not bool(four.degenerate[0])
    # no entries at all
    empty = fit_gmm_1d(torch.zeros(0), torch.zeros(0, dtype=torch.long), 2)
    assert empty.posterior.numel() == 0 and empty.degenerate.all()
    with pytest.raises(ValueError, match='finite'):
        fit_gmm_1d(torch.tensor([0., float('nan'), 1., 2.]),
                   torch.zeros(4).long())


def test_minmax_normalisation_per_set():
    values = torch.tensor([2., 4., 3., -1., 1., 5., 5.], dtype=torch.float64)
    groups = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    out = minmax_normalize(values, groups)
    np.testing.assert_allclose(out.numpy(), [0, 1, 0.5, 0, 1, 0, 0])
    # normalize=True fits what sklearn fits on the normalised set
    x = generated_sets(5)['losses 20% noise'] * 7 + 3
    fit = ours(x, normalize=True)
    xn = (x - x.min()) / (x.max() - x.min())
    np.testing.assert_allclose(fit.posterior.numpy(),
                               ours(xn).posterior.numpy(), atol=1e-9)
    expected, gmm = sklearn_fit(
        xn, **init_from_partition(xn, brute_force_two_means(xn)))
    np.testing.assert_allclose(fit.posterior.numpy(), expected, atol=1e-9)
    # parameters are in normalised units
    assert 0 <= float(fit.means[0, 0]) < float(fit.means[0, 1]) <= 1
    np.testing.assert_allclose(fit.means[0].numpy(), np.sort(
        gmm.means_[:, 0]), rtol=1e-8)


def test_padded_layout_and_float32():
    sets = list(generated_sets(6).values())[:3]
    width = max(len(s) for s in sets)
    values = torch.zeros(len(sets), width, dtype=torch.float64)
    mask = torch.zeros(len(sets), width, dtype=torch.bool)
    for i, s in enumerate(sets):
        values[i, :len(s)] = torch.as_tensor(s)
        mask[i, :len(s)] = True
    fit = fit_gmm_1d_padded(values, mask)
    assert fit.posterior.shape == values.shape
    assert fit.posterior[~mask].eq(0).all()
    for i, s in enumerate(sets):
        np.testing.assert_allclose(fit.posterior[i, :len(s)].numpy(),
                                   ours(s).posterior.numpy(), atol=1e-12)
    single = fit_gmm_1d(values[mask], torch.nonzero(mask)[:, 0],
                        dtype=torch.float32)
    assert single.posterior.dtype == torch.float32
    np.testing.assert_allclose(single.posterior.numpy(),
                               fit.posterior[mask].numpy(), atol=1e-3)


def test_label_gmms_group_positives_and_negatives_per_class():
    rng = np.random.default_rng(7)
    num, num_classes = 600, 3
    observed = (rng.random((num, num_classes)) < 0.3).astype(np.int8)
    observed[rng.random((num, num_classes)) < 0.1] = -1
    losses = np.empty((num, num_classes))
    for k in range(num_classes):
        losses[:, k] = loss_like(rng, num, 0.15)[0]
    clean, fit = fit_label_gmms(torch.as_tensor(losses),
                                torch.as_tensor(observed), unknown_value=-7)
    assert clean.shape == (num, num_classes)
    assert clean[torch.as_tensor(observed) == -1].eq(-7).all()
    index, groups = label_gmm_groups(torch.as_tensor(observed))
    assert groups.max() < 2 * num_classes
    for k in range(num_classes):
        for label, group in ((1, k), (0, num_classes + k)):
            sel = observed[:, k] == label
            alone = ours(losses[sel, k], normalize=True)
            np.testing.assert_allclose(clean[:, k].numpy()[sel],
                                       alone.posterior.numpy(), atol=1e-12)
            assert int(fit.counts[group]) == sel.sum()


# ----------------------------------------------------------------------
# the binned fit (num_bins): the fast path at COCO scale
# ----------------------------------------------------------------------
def test_binned_fit_matches_sklearn_on_realistic_losses(device):
    """On min-max normalised loss sets the histogram fit gives
    scikit-learn's posteriors (same initial partition) to 1e-3 and the
    same clean decisions but for a handful of labels at the threshold."""
    rng = np.random.default_rng(5)
    sets = [loss_like(rng, num, noise)[0]
            for num, noise in [(3000, 0.2), (20000, 0.05), (8000, 0.4)]]
    values = np.concatenate(sets)
    groups = np.concatenate([np.full(len(s), i) for i, s in enumerate(sets)])
    fit = fit_gmm_1d(torch.as_tensor(values, device=device),
                     torch.as_tensor(groups, device=device),
                     normalize=True, num_bins=4096)
    assert fit.posterior.device.type == device.type
    post = fit.posterior.cpu().numpy()
    for i, s in enumerate(sets):
        x = (s - s.min()) / (s.max() - s.min())
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            gmm = sklearn_mixture.GaussianMixture(
                **SETTINGS, **init_from_partition(
                    x, brute_force_two_means_fast(x))).fit(x[:, None])
        expected = gmm.predict_proba(x[:, None])[:, gmm.means_.argmin()]
        got = post[groups == i]
        assert np.abs(got - expected).max() < 1e-3
        assert ((got > 0.5) != (expected > 0.5)).sum() <= 2


def brute_force_two_means_fast(x):
    """The optimal 1-D 2-means split from sorted prefix sums (the
    brute-force definition above, O(n log n))."""
    s = np.sort(x)
    n = len(s)
    c = np.cumsum(s - s.mean())
    j = np.arange(1, n)
    score = c[:-1]**2 * n / (j * (n - j))
    score[s[:-1] == s[1:]] = -np.inf
    return x > s[int(np.argmax(score))]


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_binned_fit_upcasts_half_precision_losses(dtype, device):
    """Losses computed under mixed precision (float16 / bfloat16) are
    binned and fitted in float32: the fit of the half-precision values is
    the float32 fit of the same (rounded) values, and the label GMMs of
    the refinement take them."""
    rng = np.random.default_rng(8)
    values = torch.as_tensor(loss_like(rng, 5000, 0.2)[0], device=device)
    groups = torch.as_tensor(rng.integers(0, 3, 5000), device=device)
    half = values.to(dtype)
    fit = fit_gmm_1d(half, groups, normalize=True, num_bins=4096)
    ref = fit_gmm_1d(half.float(), groups, normalize=True, num_bins=4096)
    assert fit.posterior.dtype == torch.float32
    assert fit.posterior.device.type == device.type
    torch.testing.assert_close(fit.posterior, ref.posterior)
    observed = torch.as_tensor(rng.integers(-1, 2, (1000, 5)), device=device)
    clean, _ = fit_label_gmms(half[:5000].reshape(1000, 5), observed,
                              num_bins=4096)
    clean32, _ = fit_label_gmms(half[:5000].reshape(1000, 5).float(),
                                observed, num_bins=4096)
    assert clean.dtype == torch.float32 and clean.device.type == device.type
    torch.testing.assert_close(clean, clean32)


def test_binned_fit_equals_exact_fit_when_bins_separate_the_values():
    """With fewer distinct values than bins every bin holds one value: the
    histogram EM is the exact EM."""
    rng = np.random.default_rng(6)
    values = np.concatenate([
        rng.integers(0, 40, 3000) / 40.0,
        rng.integers(10, 30, 500) / 7.0,
    ])
    groups = np.repeat([0, 1], [3000, 500])
    args = (torch.as_tensor(values), torch.as_tensor(groups))
    exact = fit_gmm_1d(*args, normalize=True)
    binned = fit_gmm_1d(*args, normalize=True, num_bins=1 << 14)
    np.testing.assert_allclose(binned.posterior.numpy(),
                               exact.posterior.numpy(), atol=1e-9)
    for field in ('means', 'variances', 'weights', 'n_iter'):
        np.testing.assert_allclose(getattr(binned, field).numpy(),
                                   getattr(exact, field).numpy(), atol=1e-9)


def test_binned_fit_degenerate_sets_are_all_clean():
    values = torch.tensor([0.3] * 5 + [1.0, 5.0, 9.0] + [2.0] +
                          [0.0, 0.0, 1.0, 1.0, 0.0, 1.0],
                          dtype=torch.float64)
    groups = torch.tensor([0] * 5 + [1] * 3 + [2] + [3] * 6)
    fit = fit_gmm_1d(values, groups, num_groups=5, normalize=True,
                     num_bins=64)
    assert fit.degenerate.tolist() == [True, True, True, False, True]
    assert torch.isfinite(fit.posterior).all()
    assert fit.posterior[:9].eq(1).all()
    np.testing.assert_allclose(fit.posterior[9:].numpy(),
                               [1, 1, 0, 0, 1, 0], atol=1e-12)
    with pytest.raises(ValueError, match='num_bins'):
        fit_gmm_1d(values, groups, num_bins=1)
