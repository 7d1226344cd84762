"""COMIC's losses: the Multi-Focal Modifier loss (Eq. 4-6) against the
equations computed by hand, and the Reflective Label Corrector (Eq. 2-3)."""
import math

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS

import mlimb_mm  # noqa: F401
from mlimb_mm.models.losses import (MultiFocalModifierLoss,
                                    ReflectiveLabelCorrectionLoss)
from mlimb_mm.models.utils.comic import (apply_corrections, correct_labels,
                                         head_tail_factor)

COUNTS = [400, 100, 20, 5]


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def mfm_by_hand(logits, targets, counts, pn=True, ht=True, gamma_pos=0.,
                gamma_neg=3., clip=0.05, weights=None):
    """Eq. (4)-(6) with plain Python loops: sum over labels, mean over
    images."""
    n_max = max(counts)
    total = 0.
    for i, row in enumerate(logits):
        for k, z in enumerate(row):
            h = (1 - math.log(max(counts[k], 1) / n_max))**(1 / 3) if ht \
                else 0.
            g_pos = (gamma_pos if pn else 0.) + 0. * h
            g_neg = (gamma_neg if pn else 0.) + 1. * h
            p = sigmoid(z)
            p_m = max(p - clip, 0.)
            pos = -((1 - p)**g_pos) * math.log(p)
            neg = -(p_m**g_neg) * math.log(1 - p_m)
            t = targets[i][k]
            loss = t * pos + (1 - t) * neg
            if ht:
                loss *= h
            if weights is not None:
                loss *= weights[i][k]
            total += loss
    return total / len(logits)


LOGITS = [[2.0, -1.0, 0.3, -3.0], [-0.5, 1.5, -2.0, 4.0],
          [0.0, -4.0, 3.0, 0.1]]
TARGETS = [[1, 0, 0, 0], [0, 1, 0, 1], [1, 0, 1, 0]]


@pytest.mark.parametrize('pn,ht', [(True, True), (True, False),
                                   (False, True), (False, False)])
def test_mfm_equals_eq6_by_hand_with_each_factor(pn, ht, device):
    loss = MultiFocalModifierLoss(pn_factor=pn, ht_factor=ht,
                                  class_counts=COUNTS).to(device)
    weights = [[1, 0.5, 1, 2], [1, 1, 0, 1], [0.3, 1, 1, 1]]
    got = loss(torch.tensor(LOGITS, device=device),
               torch.tensor(TARGETS, dtype=torch.float, device=device),
               weight=torch.tensor(weights, device=device), avg_factor=3)
    expected = mfm_by_hand(LOGITS, TARGETS, COUNTS, pn=pn, ht=ht,
                           weights=weights)
    assert got.dtype == torch.float32 and got.device.type == device.type
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_the_factors_change_the_loss_and_both_off_without_clip_is_bce():
    z = torch.tensor(LOGITS)
    t = torch.tensor(TARGETS, dtype=torch.float)
    values = {(pn, ht): float(MultiFocalModifierLoss(
        pn_factor=pn, ht_factor=ht, class_counts=COUNTS)(z, t))
              for pn in (True, False) for ht in (True, False)}
    assert len({round(v, 6) for v in values.values()}) == 4
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        z, t, reduction='none').sum(1).mean()
    plain = MultiFocalModifierLoss(pn_factor=False, ht_factor=False, clip=0.)
    assert float(plain(z, t, avg_factor=3)) == pytest.approx(float(bce),
                                                             rel=1e-6)


def test_head_tail_factor_by_hand():
    factor = head_tail_factor([400, 100, 0, 5])
    expected = [(1 - math.log(n / 400))**(1 / 3) for n in (400, 100, 1, 5)]
    np.testing.assert_allclose(factor.numpy(), expected, rtol=1e-12)
    assert factor[0] == 1 and torch.all(factor[1:] > 1)


def test_probability_input_matches_logit_input():
    z = torch.tensor(LOGITS)
    t = torch.tensor(TARGETS, dtype=torch.float)
    loss = MultiFocalModifierLoss(class_counts=COUNTS)
    a = loss(z, t, avg_factor=3)
    b = loss(torch.sigmoid(z), t, avg_factor=3, is_prob=True)
    assert float(a) == pytest.approx(float(b), rel=1e-5)


def test_float32_no_nan_on_extreme_and_half_inputs():
    loss = MultiFocalModifierLoss(class_counts=COUNTS, gamma_pos=0.5)
    z = torch.tensor([[80., -80., 0., 1e4], [-1e4, 30., -30., 0.]],
                     requires_grad=True)
    t = torch.tensor([[1., 0., 1., 0.], [1., 1., 0., 0.]])
    out = loss(z, t, avg_factor=2)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(z.grad).all()
    half = loss(z.detach().half(), t.half(), avg_factor=2)
    assert half.dtype == torch.float32 and torch.isfinite(half)
    # a class never seen counts once: finite factor
    loss.set_class_statistics([10, 0, 3, 1], 12)
    assert torch.isfinite(loss(z.detach(), t))


def test_needs_class_counts_and_checks_the_options():
    loss = MultiFocalModifierLoss()
    with pytest.raises(RuntimeError, match='ClassStatisticsHook'):
        loss(torch.zeros(2, 4), torch.zeros(2, 4))
    loss.set_class_statistics(np.array(COUNTS), 500)
    assert loss.has_class_statistics
    with pytest.raises(ValueError, match='4 class counts'):
        loss(torch.zeros(2, 3), torch.zeros(2, 3))
    assert torch.isfinite(MultiFocalModifierLoss(ht_factor=False)(
        torch.zeros(2, 3), torch.zeros(2, 3)))
    with pytest.raises(ValueError, match='clip'):
        MultiFocalModifierLoss(clip=1.)
    with pytest.raises(ValueError, match='gamma_neg'):
        MultiFocalModifierLoss(gamma_neg=-1)
    assert MODELS.get('MultiFocalModifierLoss') is MultiFocalModifierLoss


def test_class_counts_buffer_round_trips_through_a_state_dict():
    loss = MultiFocalModifierLoss(class_counts=COUNTS)
    fresh = MultiFocalModifierLoss()
    fresh.load_state_dict(loss.state_dict())
    assert fresh.class_counts.tolist() == COUNTS


# ----------------------------------------------------------------------
# Reflective Label Corrector, Eq. (2)-(3)
# ----------------------------------------------------------------------
def test_correction_selects_exactly_unknown_labels_above_the_threshold():
    probs = torch.tensor([[0.95, 0.80, 0.72, 0.69, 0.99],
                          [0.75, 0.90, 0.10, 0.99, 0.71],
                          [0.71, 0.60, 0.99, 0.80, 0.20]])
    tristate = torch.tensor([[-1, -1, -1, -1, 1],
                             [-1, -1, -1, 0, -1],
                             [-1, 1, 0, -1, -1]], dtype=torch.int8)
    mean = torch.tensor([0.9, 0.2, 0.5, 0.5, 0.72])
    got = correct_labels(probs, tristate, 0.7, mean)
    expected = torch.zeros_like(got)
    for i in range(3):
        for k in range(5):
            expected[i, k] = bool(tristate[i, k] == -1 and
                                  probs[i, k] > max(0.7, mean[k]))
    assert torch.equal(got, expected)
    assert got.sum() == 5  # (0,0) (0,1) (0,2) (1,1) (2,3)
    assert not got[tristate != -1].any()  # never an observed label
    # the paper's binary labels: zeros are candidates, positives never
    with_neg = correct_labels(probs, tristate, 0.7, mean,
                              include_negatives=True)
    assert torch.equal(with_neg, expected | ((tristate == 0) &
                                            (probs > mean.clamp_min(0.7))))
    assert not with_neg[tristate == 1].any()


def test_corrected_labels_weighted_batch_over_count():
    targets = torch.zeros(4, 3)
    weights = torch.full((4, 3), 0.5)
    corrected = torch.zeros(4, 3, dtype=torch.bool)
    corrected[0, 1] = corrected[2, 2] = corrected[3, 0] = True
    t, w = apply_corrections(targets, weights, corrected, scale=0.2)
    assert torch.equal(t, corrected.float())
    assert torch.allclose(w[corrected], torch.full((3, ), 0.2 * 4 / 3))
    assert torch.equal(w[~corrected], weights[~corrected])


def make_rlc(**kwargs):
    loss = ReflectiveLabelCorrectionLoss(**kwargs)
    loss.loss.set_class_statistics(COUNTS, 500)
    return loss


def test_rlc_loss_is_the_mfm_of_the_corrected_labels(device):
    z = torch.tensor([[2.0, 1.2, -1.0, 0.0], [3.0, -2.0, 0.9, 1.0]])
    tristate = torch.tensor([[1, -1, -1, 0], [-1, 0, -1, 1]],
                            dtype=torch.int8)
    target = (tristate == 1).float()
    weight = torch.ones(2, 4)
    rlc = make_rlc(tau=0.7, distribution='static',
                   corrected_weight=0.5).to(device)
    rlc.train()
    rlc.enable_correction_records()
    got = rlc(z.to(device), target.to(device), weight=weight.to(device),
              avg_factor=2, tristate=tristate.to(device),
              sample_idx=torch.tensor([7, 3]))
    # sigmoid: 1.2 -> 0.77, 3.0 -> 0.95, 0.9 -> 0.71 are unknown and > 0.7
    corrected = torch.tensor([[0, 1, 0, 0], [1, 0, 1, 0]], dtype=torch.bool)
    t2 = torch.where(corrected, 1., target)
    w2 = torch.where(corrected, 0.5 * 2 / 3, weight)
    expected = mfm_by_hand(z.tolist(), t2.tolist(), COUNTS,
                           weights=w2.tolist())
    assert got.device.type == device.type
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # the first call has no past: Pbar is the running mean from now on
    assert rlc.prob_sum.device.type == device.type
    np.testing.assert_allclose(rlc.mean_probs().cpu().numpy(),
                               torch.sigmoid(z).mean(0).double().numpy(),
                               rtol=1e-6)
    # the records for the hook are on the CPU (the label store's side)
    record, = rlc.pop_corrections()
    assert torch.equal(record['corrected'], corrected)
    assert record['sample_idx'].tolist() == [7, 3]
    # the dynamic distribution: n_k plus the corrections, on the device
    assert rlc.epoch_corrections.tolist() == [1, 1, 1, 0]


def test_running_mean_raises_the_threshold_and_batch_mode_uses_the_batch():
    rlc = make_rlc(tau=0.5, distribution='static')
    rlc.train()
    rlc.enable_correction_records()
    tristate = torch.full((2, 4), -1, dtype=torch.int8)
    high = torch.full((2, 4), 3.0)  # p = 0.953
    rlc(high, torch.zeros(2, 4), tristate=tristate)
    assert rlc.pop_corrections()[0]['corrected'].all()
    # Pbar = 0.953 now: p = 0.88 > tau but < Pbar -> no correction
    rlc(torch.full((2, 4), 2.0), torch.zeros(2, 4), tristate=tristate)
    assert not rlc.pop_corrections()[0]['corrected'].any()
    batch = make_rlc(tau=0.5, mean='batch', distribution='static')
    batch.train()
    batch.enable_correction_records()
    z = torch.tensor([[2.0, 0.0, 0., 0.], [1.0, 0.0, 0., 0.]])
    batch(z, torch.zeros(2, 4), tristate=tristate)
    corrected = batch.pop_corrections()[0]['corrected']
    # class 0: batch mean of (0.88, 0.73) = 0.805 -> only the first
    assert corrected[:, 0].tolist() == [True, False]


def test_dynamic_distribution_adds_the_epochs_corrections():
    rlc = make_rlc(tau=0.5)
    rlc.train()
    tristate = torch.tensor([[-1, -1, 1, -1]], dtype=torch.int8)
    z = torch.tensor([[3.0, -3.0, 3.0, 3.0]])
    rlc(z, torch.zeros(1, 4), tristate=tristate)
    assert rlc.epoch_corrections.tolist() == [1, 0, 0, 1]
    assert rlc.current_class_counts().tolist() == [401, 100, 20, 6]
    # the inner loss sees the corrected counts
    seen = {}
    forward = rlc.loss.forward

    def spy(*args, **kwargs):
        seen['counts'] = kwargs['class_counts'].tolist()
        return forward(*args, **kwargs)

    rlc.loss.forward = spy
    # above the running mean (sigmoid(3) = 0.95) again: corrected again
    rlc(z + 2, torch.zeros(1, 4), tristate=tristate)
    assert seen['counts'] == [402, 100, 20, 7]
    rlc.reset_epoch_corrections()
    assert rlc.current_class_counts().tolist() == COUNTS
    static = make_rlc(tau=0.5, distribution='static')
    static.train()
    static(z, torch.zeros(1, 4), tristate=tristate)
    assert static.current_class_counts().tolist() == COUNTS
    # eval mode: no state change
    rlc.eval()
    rlc(z, torch.zeros(1, 4), tristate=tristate)
    assert rlc.epoch_corrections.tolist() == [0, 0, 0, 0]


def test_rlc_options_and_errors():
    rlc = make_rlc()
    with pytest.raises(ValueError, match='pass_tristate'):
        rlc(torch.zeros(2, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match='static'):
        ReflectiveLabelCorrectionLoss(loss=dict(type='MultiLabelBCELoss'))
    bce = ReflectiveLabelCorrectionLoss(
        loss=dict(type='MultiLabelBCELoss'), distribution='static')
    out = bce(torch.zeros(2, 4), torch.zeros(2, 4),
              tristate=torch.full((2, 4), -1, dtype=torch.int8))
    assert torch.isfinite(out)
    with pytest.raises(ValueError, match='tau'):
        ReflectiveLabelCorrectionLoss(tau=1.5)
    with pytest.raises(ValueError, match='mean'):
        ReflectiveLabelCorrectionLoss(mean='ema')
    # the running state is checkpointed
    rlc.train()
    rlc(torch.ones(3, 4), torch.zeros(3, 4),
        tristate=torch.zeros(3, 4, dtype=torch.int8))
    fresh = make_rlc()
    fresh.load_state_dict(rlc.state_dict())
    assert int(fresh.prob_count) == 3
    assert torch.equal(fresh.prob_sum, rlc.prob_sum)


def test_dynamic_distribution_without_the_hook_warns_once(monkeypatch):
    from mlimb_mm.models.losses import reflective_label_correction_loss as m
    messages = []
    monkeypatch.setattr(m, 'print_log', lambda msg, *a, **k:
                        messages.append(msg))
    rlc = make_rlc()
    rlc.train()
    tristate = torch.full((2, 4), -1, dtype=torch.int8)
    for _ in range(2):
        rlc(torch.zeros(2, 4), torch.zeros(2, 4), tristate=tristate)
    assert len(messages) == 1
    assert 'ReflectiveLabelCorrectionHook' in messages[0]
    hooked = make_rlc()
    hooked.train()
    hooked.enable_correction_records()
    hooked(torch.zeros(2, 4), torch.zeros(2, 4), tristate=tristate)
    assert len(messages) == 1
