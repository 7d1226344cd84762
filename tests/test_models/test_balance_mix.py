"""BalanceMix's mixing of a random and a minority batch, Eq. (5)."""
import pytest
import torch
from mmpretrain.registry import BATCH_AUGMENTS

from mlimb_mm.models.utils import (BalanceMix, balance_mix,
                                   sample_balance_lambda)


def batches(batch=6, num_classes=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs_r = torch.rand(batch, 3, 8, 8, generator=gen)
    inputs_m = torch.rand(batch, 3, 8, 8, generator=gen)
    targets_r = (torch.rand(batch, num_classes, generator=gen) < 0.4).float()
    targets_m = (torch.rand(batch, num_classes, generator=gen) < 0.4).float()
    return inputs_r, targets_r, inputs_m, targets_m


def test_lambda_is_folded_to_at_least_one_half():
    gen = torch.Generator().manual_seed(0)
    lam = sample_balance_lambda(4.0, 20000, gen, dtype=torch.float64)
    assert lam.min() >= 0.5 and lam.max() <= 1
    # the mean of max(l', 1 - l') for l' ~ Beta(4, 4), by quadrature
    grid = torch.linspace(0, 1, 200001, dtype=torch.float64)
    dens = grid**3 * (1 - grid)**3
    dens /= torch.trapezoid(dens, grid)
    expected = torch.trapezoid(torch.maximum(grid, 1 - grid) * dens, grid)
    assert float(lam.mean()) == pytest.approx(float(expected), abs=3e-3)
    # small alpha puts lam near 1 (near-unmixed), never below 1/2
    lam = sample_balance_lambda(0.2, 5000, gen)
    assert lam.min() >= 0.5 and float(lam.mean()) > 0.85
    with pytest.raises(ValueError):
        sample_balance_lambda(0.0)


def test_mixing_formula_is_exact_one_lambda_per_batch():
    inputs_r, targets_r, inputs_m, targets_m = batches()
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        inputs, targets, lam = balance_mix(inputs_r, targets_r, inputs_m,
                                           targets_m, 4.0, gen)
        assert lam.dim() == 0 and 0.5 <= float(lam) <= 1
        torch.testing.assert_close(inputs,
                                   lam * inputs_r + (1 - lam) * inputs_m,
                                   rtol=0, atol=1e-6)
        torch.testing.assert_close(targets,
                                   lam * targets_r + (1 - lam) * targets_m,
                                   rtol=0, atol=1e-6)
        # the random image dominates: its labels keep weight >= 1/2
        assert (targets[targets_r == 1] >= 0.5).all()
        assert (targets[(targets_r == 0) & (targets_m == 1)] <= 0.5).all()


def test_per_sample_lambda():
    inputs_r, targets_r, inputs_m, targets_m = batches(batch=64)
    gen = torch.Generator().manual_seed(1)
    inputs, targets, lam = balance_mix(inputs_r, targets_r, inputs_m,
                                       targets_m, 4.0, gen, per_sample=True)
    assert lam.shape == (64, ) and (lam >= 0.5).all()
    assert lam.unique().numel() == 64  # one draw per pair
    for i in range(64):
        torch.testing.assert_close(
            inputs[i], lam[i] * inputs_r[i] + (1 - lam[i]) * inputs_m[i],
            rtol=0, atol=1e-6)
        torch.testing.assert_close(
            targets[i], lam[i] * targets_r[i] + (1 - lam[i]) * targets_m[i],
            rtol=0, atol=1e-6)


def test_seeded_reproducibility():
    data = batches()
    a = balance_mix(*data, 4.0, torch.Generator().manual_seed(5))
    b = balance_mix(*data, 4.0, torch.Generator().manual_seed(5))
    c = balance_mix(*data, 4.0, torch.Generator().manual_seed(6))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[2], c[2])
    # the registered augment with a seed: the same sequence of lambdas
    aug1 = BATCH_AUGMENTS.build(dict(type='BalanceMix', alpha=4.0, seed=3))
    aug2 = BalanceMix(alpha=4.0, seed=3)
    lams1, lams2 = [], []
    for _ in range(5):
        out1, out2 = aug1(*data), aug2(*data)
        assert torch.equal(out1[0], out2[0]) and torch.equal(out1[1], out2[1])
        lams1.append(float(aug1.last_lam))
        lams2.append(float(aug2.last_lam))
    assert lams1 == lams2 and len(set(lams1)) == 5


def test_weights_follow_the_random_batch():
    inputs_r, targets_r, inputs_m, targets_m = batches()
    weights_r = torch.rand(targets_r.shape)
    weights_m = torch.zeros(targets_r.shape)
    aug = BalanceMix(alpha=4.0, seed=0)
    inputs, targets, weights = aug(inputs_r, targets_r, inputs_m, targets_m,
                                   weights_r, weights_m)
    assert torch.equal(weights, weights_r)
    lam = aug.last_lam
    torch.testing.assert_close(targets,
                               lam * targets_r + (1 - lam) * targets_m)
    # without weights: (inputs, targets) like mmpretrain's batch augments
    assert len(aug(inputs_r, targets_r, inputs_m, targets_m)) == 2
    with pytest.raises(ValueError):
        aug(inputs_r, targets_r, inputs_m, targets_m, weights_r[:, :2])


def test_shapes_and_dtypes_are_checked_and_kept():
    inputs_r, targets_r, inputs_m, targets_m = batches()
    with pytest.raises(ValueError):
        balance_mix(inputs_r, targets_r, inputs_m[:3], targets_m)
    with pytest.raises(ValueError):
        balance_mix(inputs_r, targets_r, inputs_m, targets_m[:, :2])
    half = balance_mix(inputs_r.half(), targets_r, inputs_m.half(),
                       targets_m, generator=torch.Generator().manual_seed(0))
    assert half[0].dtype == torch.float16 and half[1].dtype == torch.float32
    # integer images (uint8) are mixed in float
    mixed = balance_mix((inputs_r * 255).to(torch.uint8), targets_r,
                        (inputs_m * 255).to(torch.uint8), targets_m)
    assert mixed[0].dtype == torch.float32
    with pytest.raises(ValueError):
        BalanceMix(alpha=0)
