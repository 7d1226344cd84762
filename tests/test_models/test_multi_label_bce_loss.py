import pytest
import torch
import torch.nn.functional as F

from mlimb_mm.models.losses import MultiLabelBCELoss


def bce_by_hand(logits, target):
    p = torch.sigmoid(logits)
    return -(target * torch.log(p) + (1 - target) * torch.log(1 - p))


def test_matches_hand_computation_with_per_label_weight(device):
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    target = torch.tensor([[1.0, 0.0, 0.3], [0.0, 1.0, 1.0]])
    weight = torch.tensor([[1.0, 0.0, 0.5], [1.0, 1.0, 0.0]])
    loss = MultiLabelBCELoss(pos_weight=[1., 1., 1.]).to(device)(
        logits.to(device), target.to(device), weight=weight.to(device),
        avg_factor=2)
    expected = (bce_by_hand(logits, target) * weight).sum() / 2
    assert loss.device.type == device.type
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_default_mean_is_over_elements_and_matches_torch():
    logits, target = torch.randn(4, 5), torch.rand(4, 5)
    loss = MultiLabelBCELoss(loss_weight=2.0)(logits, target)
    expected = 2.0 * F.binary_cross_entropy_with_logits(logits, target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_no_reduction_and_shape_check():
    logits, target = torch.randn(2, 3), torch.rand(2, 3)
    loss = MultiLabelBCELoss(reduction='none')(logits, target)
    torch.testing.assert_close(loss, bce_by_hand(logits, target))
    with pytest.raises(ValueError, match='per-label weight'):
        MultiLabelBCELoss()(logits, target, weight=torch.ones(2))


def test_gradients_finite_for_extreme_logits():
    logits = torch.tensor([[1e4, -1e4], [-1e4, 1e4]], requires_grad=True)
    target = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    loss = MultiLabelBCELoss()(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
