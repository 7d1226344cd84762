import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS, TRANSFORMS
from mmpretrain.structures import DataSample

import mlimb_mm  # noqa: F401


def packed_sample(tristate, sample_idx):
    pack = TRANSFORMS.build(dict(type='PackMultiLabelInputs'))
    results = dict(
        img=np.zeros((4, 4, 3), np.uint8),
        gt_tristate=np.array(tristate, np.int8),
        sample_idx=sample_idx)
    return pack(results)['data_samples']


def test_pack_builds_the_label_convention():
    sample = packed_sample([1, 0, -1, 1], sample_idx=7)
    assert sample.gt_label.tolist() == [0, 3]
    assert sample.gt_score.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert sample.gt_tristate.tolist() == [1, 0, -1, 1]
    assert sample.sample_idx == 7


def test_pack_builds_tristate_for_voc_difficult():
    pack = TRANSFORMS.build(dict(type='PackMultiLabelInputs', num_classes=4))
    sample = pack(dict(img=np.zeros((4, 4, 3), np.uint8), gt_label=[1],
                       gt_label_difficult=[2]))['data_samples']
    assert sample.gt_tristate.tolist() == [0, 1, -1, 0]
    with pytest.raises(KeyError, match='num_classes'):
        TRANSFORMS.build(dict(type='PackMultiLabelInputs'))(
            dict(img=np.zeros((4, 4, 3), np.uint8), gt_label=[1]))


def test_head_ignores_unknown_and_applies_label_weight(device):
    head = MODELS.build(
        dict(type='TriStateLinearClsHead', num_classes=4,
             in_channels=3)).to(device)
    head.enable_train_predictions('hook')
    feats = (torch.randn(2, 3, device=device), )
    samples = [packed_sample([1, 0, -1, 1], 0), packed_sample([0, -1, 1, 0], 1)]
    # as after ClsDataPreprocessor on a GPU: gt_score on the device,
    # gt_tristate and the label store's label_weight on the CPU
    for sample in samples:
        sample.set_gt_score(sample.gt_score.to(device))
    samples[0].set_field(torch.tensor([1.0, 0.5, 1.0, 0.0]), 'label_weight')
    samples[1].set_field(torch.tensor([1.0, 1.0, 2.0, 1.0]), 'label_weight')
    loss = head.loss(feats, samples)['loss']
    assert loss.device.type == device.type
    record, = head.pop_train_predictions('hook')
    assert record['logits'].device.type == device.type
    assert record['sample_idx'].tolist() == [0, 1]

    logits = head(feats).cpu()
    target = torch.tensor([[1., 0, 0, 1], [0, 0, 1, 0]])
    weight = torch.tensor([[1., 0.5, 0, 0], [1, 0, 2, 1]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, target, reduction='none')
    expected = (bce * weight).sum() / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_head_can_treat_unknown_as_negative():
    head = MODELS.build(
        dict(type='TriStateLinearClsHead', num_classes=2, in_channels=3,
             ignore_unknown=False))
    feats = (torch.randn(1, 3), )
    loss = head.loss(feats, [packed_sample([1, -1], 0)])['loss']
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        head(feats), torch.tensor([[1., 0.]]), reduction='sum')
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_head_requires_packed_labels():
    head = MODELS.build(
        dict(type='TriStateLinearClsHead', num_classes=2, in_channels=3))
    with pytest.raises(KeyError, match='PackMultiLabelInputs'):
        head.loss((torch.randn(1, 3), ), [DataSample().set_gt_label([0])])


def test_head_dropout_only_in_training():
    head = MODELS.build(
        dict(type='TriStateLinearClsHead', num_classes=2, in_channels=64,
             dropout=0.5))
    feats = (torch.ones(4, 64), )
    head.eval()
    torch.testing.assert_close(head(feats), head(feats))
    head.train()
    assert not torch.equal(head(feats), head(feats))


def test_head_passes_tristate_labels_to_the_loss_when_asked():
    from mmpretrain.registry import MODELS as REGISTRY

    @REGISTRY.register_module(force=True)
    class RecordingLoss(torch.nn.Module):
        """Records what the head gives it; the loss is the sum of logits
        over the unknown labels (a loss that reads them itself)."""

        def forward(self, cls_score, target, weight=None, avg_factor=None,
                    tristate=None):
            self.seen = dict(target=target, weight=weight, tristate=tristate)
            return (cls_score * (tristate == -1)).sum()

    head = MODELS.build(
        dict(type='TriStateLinearClsHead', num_classes=3, in_channels=2,
             ignore_unknown=False, pass_tristate=True,
             loss=dict(type='RecordingLoss')))
    feats = (torch.randn(2, 2), )
    samples = [packed_sample([1, -1, 0], 0), packed_sample([-1, 0, 1], 1)]
    loss = head.loss(feats, samples)['loss']
    seen = head.loss_module.seen
    assert seen['tristate'].dtype == torch.int8
    assert seen['tristate'].tolist() == [[1, -1, 0], [-1, 0, 1]]
    # ignore_unknown=False: the unknown labels keep their weight
    assert seen['weight'].tolist() == [[1., 1., 1.], [1., 1., 1.]]
    logits = head(feats)
    assert loss.item() == pytest.approx(
        (logits[0, 1] + logits[1, 0]).item(), rel=1e-6)
    # the default head does not pass them (losses without the keyword)
    plain = MODELS.build(
        dict(type='TriStateLinearClsHead', num_classes=3, in_channels=2))
    plain.loss(feats, samples)
