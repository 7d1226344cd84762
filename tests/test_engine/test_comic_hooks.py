"""MovingGradientHook (COMIC Eq. 7) and ReflectiveLabelCorrectionHook
(the bookkeeping of Eq. 2-3): updates, two gloo ranks, checkpoints."""
import io
import json
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from dist_utils import run_distributed
from fake_datasets import FakeTriStateDataset
from mmpretrain.registry import HOOKS
from mmpretrain.structures import DataSample

import mlimb_mm  # noqa: F401
from mlimb_mm.datasets.samplers import COMICSampler
from mlimb_mm.engine.hooks import (LabelStoreHook, MovingGradientHook,
                                   ReflectiveLabelCorrectionHook)
from mlimb_mm.engine.hooks.label_correction_hook import HISTORY_JSON
from mlimb_mm.models.heads import COMICHead
from mlimb_mm.models.losses import ReflectiveLabelCorrectionLoss

D = 4


class FakeModel(nn.Module):

    def __init__(self, head=None, num_streams=1):
        super().__init__()
        self.head = head if head is not None else COMICHead(
            num_classes=3, in_channels=D, distill=None,
            loss=dict(type='ReflectiveLabelCorrectionLoss',
                      distribution='static',
                      loss=dict(type='MultiFocalModifierLoss',
                                ht_factor=False)))
        self.num_streams = num_streams


def make_runner(hooks, model=None, dataset=None, resume=False, log_dir=None,
                loader=None):
    dataset = dataset or FakeTriStateDataset(np.zeros((8, 3), np.int8))
    return SimpleNamespace(
        train_dataloader=loader or SimpleNamespace(
            dataset=dataset, sampler=None, batch_size=4),
        hooks=hooks, model=model or FakeModel(), epoch=0, iter=0, seed=0,
        _resume=resume, log_dir=log_dir)


def feed(hook, runner, means):
    head = runner.model.head
    head._feature_means = torch.as_tensor(
        means, dtype=torch.float32, device=head.moving_vectors.device)
    hook.after_train_iter(runner, 0)


# ----------------------------------------------------------------------
# MovingGradientHook
# ----------------------------------------------------------------------
def test_moving_vector_follows_eq7(device):
    assert HOOKS.get('MovingGradientHook') is MovingGradientHook
    hook = MovingGradientHook(mu=0.9)
    runner = make_runner([hook], model=FakeModel().to(device))
    hook.before_train(runner)
    rng = np.random.default_rng(0)
    expected = np.zeros((2, D))
    for _ in range(5):
        s = rng.normal(size=(2, D))
        feed(hook, runner, s)
        expected = 0.9 * expected + s
    vectors = runner.model.head.moving_vectors
    assert vectors.device.type == device.type  # kept where the model is
    np.testing.assert_allclose(vectors.cpu().numpy(), expected, rtol=1e-5)
    assert hook.steps == 5
    # the checkpoint holds a CPU copy; it loads back onto the device
    state = hook.state_dict()
    assert state['vectors'].device.type == 'cpu'
    hook.apply_state(dict(state, vectors=state['vectors'] * 2))
    assert vectors.device.type == device.type
    np.testing.assert_allclose(vectors.cpu().numpy(), 2 * expected,
                               rtol=1e-5)
    hook.apply_state(state)
    with pytest.raises(RuntimeError, match='no training features'):
        hook.after_train_iter(runner, 0)


def test_checkpoint_round_trip_and_resume_continue_the_vector():
    rng = np.random.default_rng(1)
    steps = [rng.normal(size=(2, D)) for _ in range(6)]
    straight = MovingGradientHook()
    runner = make_runner([straight])
    straight.before_train(runner)
    for s in steps:
        feed(straight, runner, s)

    first = MovingGradientHook()
    runner = make_runner([first])
    first.before_train(runner)
    for s in steps[:3]:
        feed(first, runner, s)
    checkpoint = dict(state_dict=runner.model.state_dict())
    first.before_save_checkpoint(runner, checkpoint)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    assert checkpoint['moving_gradient']['steps'] == 3

    resumed = MovingGradientHook()
    model = FakeModel()
    model.load_state_dict(checkpoint['state_dict'])  # the model's buffer
    runner = make_runner([resumed], model=model, resume=True)
    resumed.after_load_checkpoint(runner, checkpoint)
    resumed.before_train(runner)
    assert resumed.steps == 3
    for s in steps[3:]:
        feed(resumed, runner, s)
    assert torch.allclose(model.head.moving_vectors,
                          straight._head.moving_vectors)
    # load_from without resume: the hook starts afresh, the buffer is the
    # model's (test-time head / tail rows keep it)
    fresh = MovingGradientHook()
    model = FakeModel()
    model.load_state_dict(checkpoint['state_dict'])
    runner = make_runner([fresh], model=model)
    fresh.after_load_checkpoint(runner, checkpoint)
    fresh.before_train(runner)
    assert fresh.steps == 0 and model.head.moving_vectors.abs().sum() > 0


def test_stream_layout_is_checked():
    ds = FakeTriStateDataset(np.eye(3, dtype=np.int8).repeat(4, 0))
    sampler = COMICSampler(ds, batch_size_per_stream=2, seed=0)
    hook = MovingGradientHook()
    loader = SimpleNamespace(dataset=ds, sampler=sampler, batch_size=4)
    with pytest.raises(ValueError, match='needs 6'):
        hook.before_train(make_runner([hook], FakeModel(num_streams=3),
                                      loader=loader))
    with pytest.raises(ValueError, match='expects 1'):
        hook.before_train(make_runner([hook], FakeModel(num_streams=1),
                                      loader=loader))
    plain = SimpleNamespace(dataset=ds, sampler=None, batch_size=6)
    with pytest.raises(ValueError, match='COMICSampler'):
        hook.before_train(make_runner([hook], FakeModel(num_streams=3),
                                      loader=plain))
    loader.batch_size = 6
    hook.before_train(make_runner([hook], FakeModel(num_streams=3),
                                  loader=loader))
    with pytest.raises(TypeError, match='moving vectors'):
        hook.before_train(make_runner([hook], nn.Linear(2, 2)))


def two_rank_steps(steps):
    from mmengine.dist import get_rank
    rank = get_rank()
    torch.manual_seed(0)
    hook = MovingGradientHook(mu=0.9)
    runner = make_runner([hook])
    hook.before_train(runner)
    for s in steps[rank]:
        feed(hook, runner, s)
    # the label corrector's running state is summed over ranks too
    loss = ReflectiveLabelCorrectionLoss(distribution='static', tau=0.5,
                                         loss=dict(type='MultiLabelBCELoss'))
    loss.train()
    logits = torch.full((2 + rank, 3), float(rank + 1))
    loss(logits, torch.zeros_like(logits),
         tristate=torch.full(logits.shape, -1, dtype=torch.int8))
    return dict(vectors=runner.model.head.moving_vectors.numpy().copy(),
                prob_sum=loss.prob_sum.numpy().copy(),
                prob_count=int(loss.prob_count))


def test_two_ranks_hold_the_same_moving_vector(tmp_path):
    rng = np.random.default_rng(2)
    steps = [[rng.normal(size=(2, D)) for _ in range(3)] for _ in range(2)]
    rank0, rank1 = run_distributed(two_rank_steps, (steps, ),
                                   out_dir=str(tmp_path))
    np.testing.assert_array_equal(rank0['vectors'], rank1['vectors'])
    expected = np.zeros((2, D))
    for a, b in zip(*steps):
        expected = 0.9 * expected + (a + b) / 2
    np.testing.assert_allclose(rank0['vectors'], expected, rtol=1e-5)
    np.testing.assert_array_equal(rank0['prob_sum'], rank1['prob_sum'])
    assert rank0['prob_count'] == rank1['prob_count'] == 5
    sig = 1 / (1 + np.exp(-np.array([1., 2.])))
    np.testing.assert_allclose(rank0['prob_sum'],
                               np.full(3, 2 * sig[0] + 3 * sig[1]), rtol=1e-6)


# ----------------------------------------------------------------------
# ReflectiveLabelCorrectionHook
# ----------------------------------------------------------------------
class CleanDataset(FakeTriStateDataset):

    def __init__(self, labels, clean):
        super().__init__(labels)
        self.clean = np.asarray(clean, np.int8)

    def get_clean_tristate_labels(self):
        return self.clean


class LossModel(nn.Module):

    def __init__(self):
        super().__init__()
        self.loss = ReflectiveLabelCorrectionLoss(
            tau=0.5, correct_negatives=True,
            loss=dict(type='MultiFocalModifierLoss', ht_factor=False))


def batch_of(indices):
    samples = []
    for i in indices:
        sample = DataSample()
        sample.set_metainfo(dict(sample_idx=int(i)))
        samples.append(sample)
    return dict(inputs=[torch.zeros(1)] * len(indices), data_samples=samples)


def test_corrections_counted_marked_and_scored_against_clean_labels(
        tmp_path, device):
    # the paper's labels: missing positives written as 0
    observed = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 0, 0]],
                        np.int8)
    clean = np.array([[1, 1, 0], [1, 0, 1], [1, 0, 0], [0, 1, 0]], np.int8)
    store_hook, hook = LabelStoreHook(), ReflectiveLabelCorrectionHook()
    model = LossModel().to(device)
    runner = make_runner([store_hook, hook], model=model,
                         dataset=CleanDataset(observed, clean),
                         log_dir=str(tmp_path))
    for h in runner.hooks:
        h.before_train(runner)
    hook.before_train_epoch(runner)
    model.loss.train()
    tri = torch.as_tensor(observed, device=device)
    logits = torch.tensor([[3., 3., -3.], [3., -3., 3.], [3., 3., -3.],
                           [-3., 3., 3.]], device=device)
    # rows 0, 1 with their indices; rows 2, 3 without (the batch's)
    model.loss(logits[:2], tri[:2].float().clamp_min(0), tristate=tri[:2],
               sample_idx=torch.tensor([0, 1]))
    hook.after_train_iter(runner, 0, batch_of([0, 1]))
    model.loss(logits[2:], tri[2:].float().clamp_min(0), tristate=tri[2:])
    hook.after_train_iter(runner, 1, batch_of([2, 3]))
    # corrected: (0,1) true, (1,0) true, (2,1) false, (3,1) true, (3,2)
    # false; observed positives never
    store = store_hook.store
    marks = store[hook.field].numpy()
    assert marks.tolist() == [[0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert torch.equal(store['observed'], torch.as_tensor(observed))
    assert model.loss.epoch_corrections.tolist() == [1, 3, 1]
    assert model.loss.epoch_corrections.device.type == device.type
    store_hook.after_train_epoch(runner)
    hook.after_train_epoch(runner)
    record = hook.history[-1]
    assert record['corrections'] == {'loss': 5}
    assert record['event_precision'] == pytest.approx(3 / 5)
    labels = record['labels']
    assert labels['corrected'] == 5 and labels['per_class'] == [1, 3, 1]
    assert labels['precision'] == pytest.approx(3 / 5)
    assert labels['missing'] == 3 and labels['recall'] == pytest.approx(1.)
    with open(osp.join(str(tmp_path), HISTORY_JSON)) as f:
        assert json.load(f)['epochs'][0]['labels']['true'] == 3
    # the next epoch restarts the dynamic distribution; marks are kept
    runner.epoch = 1
    hook.before_train_epoch(runner)
    assert model.loss.epoch_corrections.tolist() == [0, 0, 0]
    assert store[hook.field].sum() == 5
    # the history is checkpointed (weights_only)
    checkpoint = {}
    hook.before_save_checkpoint(runner, checkpoint)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)['label_correction']
    assert state['history'][0]['labels']['corrected'] == 5


def test_needs_a_correcting_loss():
    hook = ReflectiveLabelCorrectionHook()
    with pytest.raises(TypeError, match='ReflectiveLabelCorrectionLoss'):
        hook.before_train(make_runner([LabelStoreHook(), hook],
                                      model=nn.Linear(2, 2)))
    assert hook.label_store_fields()[0].dtype == 'int16'
