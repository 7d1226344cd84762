"""The PLM math (mlimb_mm/models/utils/plm.py): dataset ratios, the keep
probabilities and masks of Eq. (3), the z-scores and the ratio step."""
import math

import pytest
import torch

from mlimb_mm.models.utils.plm import (dataset_ratios, keep_probabilities,
                                       ratio_step, zscore)


def random_tristate_labels(num, seed=0):
    """A head, a tail, a balanced class and one without negatives; 10%
    unknown labels."""
    gen = torch.Generator().manual_seed(seed)
    rand = torch.rand(num, 4, generator=gen)
    obs = (rand < torch.tensor([0.75, 0.05, 0.5, 1.1])).to(torch.int8)
    obs[torch.rand(num, 4, generator=gen) < 0.1] = -1
    return obs


def test_dataset_ratio_ignores_unknown_labels():
    obs = torch.tensor([[1, 0, -1], [1, -1, -1], [0, 1, -1], [1, 0, 1]],
                       dtype=torch.int8)
    pos, neg, r = dataset_ratios(obs, chunk_elems=3)  # chunked
    assert pos.tolist() == [3, 1, 1] and neg.tolist() == [1, 2, 0]
    assert r[0] == 3 and r[1] == 0.5 and math.isinf(r[2])


def test_keep_probabilities_are_eq3():
    r = torch.tensor([2.0, 0.1, 0.5, 0.3, 0.0])
    rbar = torch.tensor([0.5, 0.4, 0.5, 0.6, 0.2])
    maskable = torch.tensor([True, True, True, False, False])
    p_pos, p_neg = keep_probabilities(r, rbar, maskable)
    # r > rbar: positives kept with rbar / r, negatives always
    assert p_pos[0] == pytest.approx(0.25) and p_neg[0] == 1
    # r < rbar: negatives kept with r / rbar, positives always
    assert p_pos[1] == 1 and p_neg[1] == pytest.approx(0.25)
    # r == rbar, or no ratio: never masked
    assert p_pos[2:].tolist() == [1, 1, 1] and p_neg[2:].tolist() == [1, 1, 1]


def test_mask_math_on_any_device(device):
    """The masks of Eq. (3) from a CPU generator are the same on a GPU, and
    the ratios and histogram indices are computed on the labels' device."""
    from mlimb_mm.models.utils.plm import (draw_masks, histogram_indices,
                                           initial_ratio)
    obs = random_tristate_labels(3000)
    probs = torch.rand(3000, 4, generator=torch.Generator().manual_seed(0))
    out = {}
    for where in ('cpu', device):
        labels = obs.to(where)
        pos, neg, ratio = dataset_ratios(labels, chunk_elems=1000)
        maskable = (pos > 0) & (neg > 0)
        target = initial_ratio(ratio, maskable, [0.5, 0.5, 0.5, 0.5])
        p_pos, p_neg = keep_probabilities(ratio, target, maskable)
        gen = torch.Generator().manual_seed(5)
        mask, stats = draw_masks(labels, p_pos, p_neg, gen,
                                 chunk_elems=1000)
        assert mask.device.type == torch.device(where).type
        flat, sel = histogram_indices(probs.to(where), labels, 10)
        out[str(where)] = [t.cpu() for t in (pos, neg, ratio, target, mask,
                                             stats['pos_kept'], flat, sel)]
    for got, expected in zip(out[str(device)], out['cpu']):
        assert torch.equal(got, expected)


def test_zscore_population_std_and_degenerate_cases():
    v = torch.tensor([1., 2., 3., 100.])
    valid = torch.tensor([True, True, True, False])
    z = zscore(v, valid)
    sd = math.sqrt(2 / 3)
    assert z.tolist() == pytest.approx([-1 / sd, 0, 1 / sd, 0])
    assert zscore(v, torch.tensor([True, False, False, False])).eq(0).all()
    assert zscore(torch.ones(3), torch.ones(3, dtype=torch.bool)).eq(0).all()


def test_ratio_step_sign_lambda_and_clip():
    rbar = torch.tensor([1.0, 0.1, 0.5], dtype=torch.float64)
    d_pos = torch.tensor([0.1, 5.0, 1.0])  # class 1: positives far from 1
    d_neg = torch.tensor([5.0, 0.1, 1.0])  # class 0: negatives far from 0
    valid = torch.ones(3, dtype=torch.bool)
    new, d = ratio_step(rbar, d_pos, d_neg, valid, lam=0.5)
    expected_d = zscore(d_pos, valid) - zscore(d_neg, valid)
    assert d.tolist() == pytest.approx(expected_d.tolist())
    assert new.tolist() == pytest.approx(
        (torch.exp(0.5 * expected_d) * rbar).tolist())
    assert new[0] < rbar[0] and new[1] > rbar[1]
    new, _ = ratio_step(rbar, d_pos, d_neg, valid, lam=5.0, clip=(0, 1))
    assert new.max() <= 1 and new[1] == 1.0
    # invalid classes keep their ratio
    valid = torch.tensor([True, False, True])
    new, d = ratio_step(rbar, d_pos, d_neg, valid, lam=0.5)
    assert new[1] == rbar[1] and d[1] == 0
