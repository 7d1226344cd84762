"""The partial-label baselines: AN / WAN / AN-LS (AssumeNegativeLoss) and
ASL with per-label weights (MultiLabelAsymmetricLoss), by hand."""
import math

import pytest
import torch
from mmpretrain.models.losses.asymmetric_loss import asymmetric_loss
from mmpretrain.registry import MODELS

import mlimb_mm  # noqa: F401
from mlimb_mm.models.losses import (AssumeNegativeLoss,
                                    MultiLabelAsymmetricLoss,
                                    MultiLabelBCELoss)

TRISTATE = [[1, 0, -1, -1], [-1, -1, 1, -1], [0, -1, -1, 0]]
LOGITS = [[1.5, -0.5, 0.2, -2.0], [0.3, 0.8, -1.0, 2.5],
          [-0.7, 0.0, 1.1, -3.0]]


def tensors(dtype=torch.float32, device='cpu'):
    tristate = torch.tensor(TRISTATE, dtype=torch.int8, device=device)
    return (torch.tensor(LOGITS, dtype=dtype, device=device),
            (tristate == 1).float(), tristate)


def bce_by_hand(z, y):
    p = 1. / (1. + math.exp(-z))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def an_by_hand(unknown_weight=1., eps=0., weight=None):
    total = 0.
    for i, row in enumerate(TRISTATE):
        for k, t in enumerate(row):
            y = 1. if t == 1 else 0.
            y = y * (1 - eps) + (1 - y) * eps  # Cole et al.'s smoothing
            w = unknown_weight if t == -1 else 1.
            if weight is not None:
                w *= weight[i][k]
            total += w * bce_by_hand(LOGITS[i][k], y)
    return total / len(TRISTATE)


def test_an_is_bce_with_unknown_labels_as_negatives(device):
    logits, targets, tristate = tensors(device=device)
    loss = MODELS.build(dict(type='AssumeNegativeLoss')).to(device)
    value = loss(logits, targets, tristate=tristate, avg_factor=3)
    assert value.device.type == device.type
    assert value.item() == pytest.approx(an_by_hand(), rel=1e-6)
    # the same as MultiLabelBCELoss on the AN targets (head with
    # ignore_unknown=False)
    ref = MultiLabelBCELoss()(logits, targets, avg_factor=3)
    assert value.item() == pytest.approx(ref.item(), rel=1e-6)
    # a target given on an unknown label (e.g. from a hook) is ignored
    other = targets.clone()
    other[tristate == -1] = 0.7
    assert loss(logits, other, tristate=tristate,
                avg_factor=3).item() == pytest.approx(value.item())


def test_wan_weighs_assumed_negatives_one_over_k_minus_one():
    logits, targets, tristate = tensors()
    loss = AssumeNegativeLoss(unknown_weight='wan')
    value = loss(logits, targets, tristate=tristate, avg_factor=3)
    assert value.item() == pytest.approx(an_by_hand(1 / 3), rel=1e-6)


def test_an_ls_and_per_label_weight():
    logits, targets, tristate = tensors()
    weight = [[1., 0., .5, 2.], [1., 1., 0.25, 1.], [0., 1., 1., 3.]]
    loss = AssumeNegativeLoss(label_smoothing=0.1)
    value = loss(logits, targets, weight=torch.tensor(weight),
                 tristate=tristate, avg_factor=3)
    assert value.item() == pytest.approx(
        an_by_hand(eps=0.1, weight=weight), rel=1e-6)


def test_an_needs_tristate_and_checks_arguments():
    logits, targets, _ = tensors()
    with pytest.raises(ValueError, match='pass_tristate'):
        AssumeNegativeLoss()(logits, targets)
    with pytest.raises(ValueError):
        AssumeNegativeLoss(unknown_weight='other')
    with pytest.raises(ValueError):
        AssumeNegativeLoss(label_smoothing=0.5)


def asl_by_hand(gamma_pos, gamma_neg, clip, weight):
    total = 0.
    for i, row in enumerate(TRISTATE):
        for k, t in enumerate(row):
            p = 1. / (1. + math.exp(-LOGITS[i][k]))
            if t == 1:
                term = (1 - p)**gamma_pos * math.log(p)
            else:  # unknown labels are negatives (AN)
                pm = max(p - clip, 0.)
                term = pm**gamma_neg * math.log(max(1 - pm, 1e-8))
            total += -weight[i][k] * term
    return total / len(TRISTATE)


@pytest.mark.parametrize('gamma_pos,gamma_neg,clip', [(0., 4., 0.05),
                                                      (1., 2., 0.),
                                                      (0., 0., 0.)])
def test_asl_per_label_weight_by_hand(gamma_pos, gamma_neg, clip, device):
    logits, targets, _ = tensors(device=device)
    weight = [[1., .5, 2., 0.], [1., 1., 3., 1.], [.2, 1., 1., 1.]]
    loss = MultiLabelAsymmetricLoss(gamma_pos=gamma_pos, gamma_neg=gamma_neg,
                                    clip=clip).to(device)
    value = loss(logits, targets, weight=torch.tensor(weight, device=device),
                 avg_factor=3)
    assert value.device.type == device.type
    assert value.item() == pytest.approx(
        asl_by_hand(gamma_pos, gamma_neg, clip, weight), rel=1e-5)


def test_asl_matches_mmpretrain_on_hard_targets_and_sample_weights():
    logits, targets, _ = tensors()
    sample_weight = torch.tensor([1., .5, 2.])
    ours = MultiLabelAsymmetricLoss(gamma_pos=1., gamma_neg=4., clip=0.05)(
        logits, targets, weight=sample_weight, reduction_override='sum')
    ref = asymmetric_loss(logits, targets, sample_weight, gamma_pos=1.,
                          gamma_neg=4., clip=0.05, reduction='sum')
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)


def test_baselines_are_float32_and_finite_at_extreme_logits():
    logits = torch.tensor([[100., -100., 40., -40.]] * 3,
                          dtype=torch.float16, requires_grad=True)
    tristate = torch.tensor(TRISTATE, dtype=torch.int8)
    targets = (tristate == 1).float()
    for loss in (AssumeNegativeLoss(unknown_weight='wan',
                                    label_smoothing=0.1),
                 MultiLabelAsymmetricLoss()):
        logits.grad = None
        value = loss(logits, targets, tristate=tristate, avg_factor=3)
        value.backward()
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert torch.isfinite(logits.grad.float()).all()
