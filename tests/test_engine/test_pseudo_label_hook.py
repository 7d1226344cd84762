"""PseudoLabelHook (Zhang et al., Eq. (5)): the pseudo labels in the label
store, their update from the epoch's training predictions, ranks,
checkpoints and history; LossEpochHook."""
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
from mmpretrain.registry import HOOKS, MODELS
from mmpretrain.structures import DataSample

import mlimb_mm  # noqa: F401
from mlimb_mm.engine.hooks import (LabelStoreHook, LossEpochHook,
                                   PseudoLabelHook, StoreField)
from mlimb_mm.engine.hooks.pseudo_label_hook import HISTORY_JSON
from mlimb_mm.models.losses import DynamicPartialLoss


# ----------------------------------------------------------------------
# fakes
# ----------------------------------------------------------------------
class FakeHead(nn.Module):
    """The training-prediction API of TriStateLinearClsHead, fed by hand."""

    ignore_unknown = False

    def __init__(self, loss=None):
        super().__init__()
        self.queues = {}
        self.loss_module = loss if loss is not None else nn.Identity()

    def enable_train_predictions(self, consumer):
        self.queues.setdefault(consumer, [])

    def disable_train_predictions(self, consumer):
        self.queues.pop(consumer, None)

    def pop_train_predictions(self, consumer):
        records, self.queues[consumer] = self.queues[consumer], []
        return records

    def push(self, logits, sample_idx):
        for queue in self.queues.values():
            queue.append(
                dict(logits=torch.as_tensor(logits, dtype=torch.float32),
                     sample_idx=torch.as_tensor(sample_idx,
                                                dtype=torch.int64)))


class FakeModel(nn.Module):

    def __init__(self, head=None):
        super().__init__()
        self.head = head if head is not None else FakeHead()


class CleanDataset(FakeTriStateDataset):
    """Observed labels with the clean ones kept, like MissingLabelDataset."""

    def __init__(self, observed, clean):
        super().__init__(observed)
        self.clean = np.asarray(clean, dtype=np.int8)

    def get_clean_tristate_labels(self):
        return self.clean


def make_runner(dataset, hook, log_dir=None, resume=False, model=None,
                seed=0, max_epochs=10):
    return SimpleNamespace(
        train_dataloader=SimpleNamespace(dataset=dataset),
        hooks=[LabelStoreHook(), hook],
        model=model or FakeModel(),
        epoch=0,
        max_epochs=max_epochs,
        iter=0,
        seed=seed,
        _resume=resume,
        log_dir=log_dir,
        message_hub=SimpleNamespace(update_info=lambda *a: None))


def start(runner):
    for hook in runner.hooks:
        hook.before_train(runner)


def store_of(runner):
    return runner.hooks[0].store


def partial_labels(num=40, num_classes=5, seed=0):
    """Clean labels and PAL-like observed labels (40% hidden)."""
    rng = np.random.default_rng(seed)
    freq = np.array([.6, .3, .2, .1, .05, .4, .15])[:num_classes]
    clean = (rng.random((num, num_classes)) < freq).astype(np.int8)
    observed = clean.copy()
    observed[rng.random(clean.shape) < 0.4] = -1
    return observed, clean


def run_epoch(runner, batches, epoch=0):
    """One epoch as the runner calls the hooks: LabelStoreHook
    (ABOVE_NORMAL) before PseudoLabelHook (NORMAL) at the epoch end."""
    runner.epoch = epoch
    store_hook, hook = runner.hooks
    hook.before_train_epoch(runner)
    for idx, logits in batches:
        runner.model.head.push(logits, idx)
        hook.after_train_iter(runner, 0, None)
    store_hook.after_train_epoch(runner)
    hook.after_train_epoch(runner)


def epoch_batches(num, num_classes, seed, batch_size=8):
    rng = np.random.default_rng(seed)
    order = rng.permutation(num)
    return [(order[s:s + batch_size],
             rng.normal(0., 2., (len(order[s:s + batch_size]), num_classes)))
            for s in range(0, num, batch_size)]


def expected_after(targets, observed, batches):
    """The pseudo labels an epoch should leave: sigmoid of each image's
    last logits on its unknown labels (float16), the rest untouched."""
    out = targets.clone()
    for idx, logits in batches:
        for row, i in enumerate(idx):
            for k in range(observed.shape[1]):
                if observed[i, k] == -1:
                    out[i, k] = float(1. / (1. + np.exp(-logits[row, k])))
    return out


# ----------------------------------------------------------------------
def test_registered_fields_and_initial_pseudo_labels():
    hook = HOOKS.build(dict(type='PseudoLabelHook'))
    assert isinstance(hook, PseudoLabelHook) and hook.priority == 'NORMAL'
    assert hook.label_store_fields() == [
        StoreField('targets', 'float16', 'observed', 'gt_score')
    ]
    observed, clean = partial_labels()
    runner = make_runner(CleanDataset(observed, clean), hook)
    start(runner)
    targets = store_of(runner)['targets']
    assert targets.dtype == torch.float16
    expected = np.where(observed == -1, 0.5, observed == 1)
    np.testing.assert_array_equal(targets.float().numpy(), expected)
    # injected as gt_score: observed labels and 0.5 on the unknown ones
    samples = []
    for i in (3, 0):
        s = DataSample()
        s.set_metainfo({'sample_idx': i})
        samples.append(s)
    runner.hooks[0].before_train_iter(runner, 0, dict(data_samples=samples))
    np.testing.assert_array_equal(samples[0].gt_score.numpy(), expected[3])
    assert samples[0].gt_score.dtype == torch.float32
    with pytest.raises(ValueError):
        PseudoLabelHook(source='other')
    with pytest.raises(ValueError):
        PseudoLabelHook(init_value=2.)


def test_an_epoch_replaces_the_unknown_labels_by_the_predictions(tmp_path):
    observed, clean = partial_labels()
    hook = PseudoLabelHook()
    runner = make_runner(CleanDataset(observed, clean), hook,
                         log_dir=str(tmp_path))
    start(runner)
    before = store_of(runner)['targets'].clone()
    batches = epoch_batches(*observed.shape, seed=1)
    run_epoch(runner, batches)
    after = store_of(runner)['targets']
    unknown = torch.as_tensor(observed == -1)
    # observed labels untouched, bit for bit
    assert torch.equal(after[~unknown], before[~unknown])
    # unknown labels: the recorded predictions (float16)
    expected = expected_after(before.float(), observed, batches)
    torch.testing.assert_close(after.float(), expected.half().float(),
                               rtol=0, atol=0)
    assert store_of(runner).num_pending() == 0  # synced at the epoch end

    # the history: mean pseudo label, accuracy per class and class group
    with open(osp.join(tmp_path, HISTORY_JSON)) as f:
        history = json.load(f)
    record = history['epochs'][0]
    assert record['epoch'] == 1
    assert record['num_unknown'] == int(unknown.sum())
    assert record['mean'] == pytest.approx(
        float(after.float()[unknown].mean()), rel=1e-6)
    hidden = unknown.numpy()
    correct = (after.float().numpy() >= 0.5) == (clean == 1)
    assert record['accuracy'] == pytest.approx(correct[hidden].mean())
    per_class = [correct[hidden[:, k], k].mean() for k in range(5)]
    assert record['accuracy_per_class'] == pytest.approx(per_class)
    # groups by the clean training counts: few < 20 <= medium <= 100
    counts = (clean == 1).sum(0)
    few = [k for k in range(5) if counts[k] < 20]
    medium = [k for k in range(5) if 20 <= counts[k] <= 100]
    assert few and medium
    assert history['groups'] == dict(many=[], medium=medium, few=few)
    for name, classes in (('medium', medium), ('few', few)):
        mask = hidden[:, classes]
        assert record['groups'][name]['accuracy'] == pytest.approx(
            correct[:, classes][mask].mean())
    assert record['groups']['many']['accuracy'] is None
    assert history['classes'] == ['c0', 'c1', 'c2', 'c3', 'c4']


def test_a_second_visit_in_the_epoch_and_a_second_epoch():
    """Every write goes to the unknown labels only; the last prediction of
    an image wins."""
    observed, clean = partial_labels(num=16)
    hook = PseudoLabelHook(init_value=0.25)
    runner = make_runner(CleanDataset(observed, clean), hook)
    start(runner)
    init = store_of(runner)['targets'].clone()
    first = epoch_batches(16, 5, seed=2)
    repeat = [(first[0][0], first[0][1] + 1.)]  # image repeated, new logits
    run_epoch(runner, first + repeat)
    expected = expected_after(init.float(), observed, first + repeat)
    torch.testing.assert_close(store_of(runner)['targets'].float(),
                               expected.half().float(), rtol=0, atol=0)
    second = epoch_batches(16, 5, seed=3)
    run_epoch(runner, second, epoch=1)
    expected = expected_after(expected, observed, second)
    torch.testing.assert_close(store_of(runner)['targets'].float(),
                               expected.half().float(), rtol=0, atol=0)
    assert len(hook.history) == 2 and hook.history[1]['epoch'] == 2


def test_the_loss_gets_the_epoch_and_the_run_seed():
    loss = DynamicPartialLoss()
    hook = PseudoLabelHook()
    observed, clean = partial_labels(num=8)
    runner = make_runner(CleanDataset(observed, clean), hook,
                         model=FakeModel(FakeHead(loss)), seed=17,
                         max_epochs=12)
    start(runner)
    runner.epoch = 5
    hook.before_train_epoch(runner)
    assert (loss.epoch, loss.max_epochs, loss._run_seed) == (5, 12, 17)
    # LossEpochHook does the same without pseudo labels
    other = DynamicPartialLoss(use_pseudo=False)
    epoch_hook = HOOKS.build(dict(type='LossEpochHook'))
    assert isinstance(epoch_hook, LossEpochHook)
    runner = SimpleNamespace(model=FakeModel(FakeHead(other)), epoch=2,
                             max_epochs=4, seed=3)
    epoch_hook.before_train(runner)
    epoch_hook.before_train_epoch(runner)
    assert (other.epoch, other.max_epochs, other._run_seed) == (2, 4, 3)


def test_loss_epoch_hook_drives_the_loss_on_the_device(device):
    """LossEpochHook gives the loss on the device its epoch and the run's
    seed: its d and its picks (CPU generator) are the CPU loss's."""
    rng = np.random.default_rng(0)
    logits = torch.as_tensor(rng.normal(0, 2, (6, 5)), dtype=torch.float32)
    tristate = torch.as_tensor(rng.integers(-1, 2, (6, 5)), dtype=torch.int8)
    target = torch.as_tensor(rng.random((6, 5)), dtype=torch.float32)
    values = {}
    for where in ('cpu', device):
        loss = DynamicPartialLoss(q=0.5)
        model = FakeModel(FakeHead(loss)).to(where)
        runner = SimpleNamespace(model=model, epoch=3, max_epochs=8, seed=5)
        hook = LossEpochHook()
        hook.before_train(runner)
        hook.before_train_epoch(runner)
        assert (loss.epoch, loss.max_epochs, loss._run_seed) == (3, 8, 5)
        value = loss(logits.to(where), target.to(where),
                     tristate=tristate.to(where), avg_factor=6)
        assert value.device.type == torch.device(where).type
        values[str(where)] = value.item()
    assert values[str(device)] == pytest.approx(values['cpu'], rel=1e-5)


def test_with_the_real_head_and_loss(device):
    """LabelStoreHook injects the pseudo labels as gt_score, the head gives
    the loss the tri-state labels, the hook records the head's logits (on
    the model's device) into the CPU store."""
    observed, clean = partial_labels(num=6, num_classes=4)
    head = MODELS.build(
        dict(type='TriStateLinearClsHead', num_classes=4, in_channels=3,
             ignore_unknown=False, pass_tristate=True,
             loss=dict(type='DynamicPartialLoss', q=1.))).to(device)
    hook = PseudoLabelHook()
    runner = make_runner(CleanDataset(observed, clean), hook,
                         model=FakeModel(head))
    start(runner)
    runner.epoch = 0
    hook.before_train_epoch(runner)
    samples = []
    for i in range(6):
        s = DataSample()
        s.set_metainfo({'sample_idx': i})
        s.set_field(torch.as_tensor(observed[i]), 'gt_tristate')
        s.set_field(torch.as_tensor(observed[i] == 1).float(), 'gt_score')
        samples.append(s)
    runner.hooks[0].before_train_iter(runner, 0, dict(data_samples=samples))
    assert samples[0].gt_score.tolist() == np.where(
        observed[0] == -1, 0.5, observed[0] == 1).tolist()
    feats = (torch.randn(6, 3, device=device), )
    losses = head.loss(feats, samples)
    assert torch.isfinite(losses['loss'])
    assert losses['loss'].device.type == device.type
    hook.after_train_iter(runner, 0, None)
    logits = head(feats)
    probs = torch.sigmoid(logits).detach().cpu()
    targets = store_of(runner)['targets'].float()
    unknown = torch.as_tensor(observed == -1)
    torch.testing.assert_close(targets[unknown], probs[unknown].half().float())
    assert torch.equal(targets[~unknown],
                       torch.as_tensor(observed == 1).float()[~unknown])


def test_source_pass_updates_at_the_epoch_end():
    observed, clean = partial_labels(num=10)
    hook = PseudoLabelHook(source='pass')
    runner = make_runner(CleanDataset(observed, clean), hook)
    start(runner)
    assert 'PseudoLabelHook' not in runner.model.head.queues  # no recording
    probs = torch.rand(10, 5)
    hook.training_set_pass.run = lambda *args, **kwargs: dict(probs=probs)
    before = store_of(runner)['targets'].clone()
    run_epoch(runner, [])
    unknown = torch.as_tensor(observed == -1)
    after = store_of(runner)['targets']
    assert torch.equal(after[~unknown], before[~unknown])
    assert torch.equal(after[unknown], probs.half()[unknown])


# ----------------------------------------------------------------------
# checkpoint
# ----------------------------------------------------------------------
def save_and_load(runner):
    checkpoint = {}
    for hook in runner.hooks:
        hook.before_save_checkpoint(runner, checkpoint)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_checkpoint_round_trip_and_resumed_run_continues():
    observed, clean = partial_labels()
    epochs = [epoch_batches(40, 5, seed=s) for s in (10, 11, 12)]

    full = PseudoLabelHook()
    runner = make_runner(CleanDataset(observed, clean), full)
    start(runner)
    for e, batches in enumerate(epochs):
        run_epoch(runner, batches, e)
    full_targets = store_of(runner)['targets'].clone()

    first = PseudoLabelHook()
    runner = make_runner(CleanDataset(observed, clean), first)
    start(runner)
    for e, batches in enumerate(epochs[:2]):
        run_epoch(runner, batches, e)
    saved = store_of(runner)['targets'].clone()
    checkpoint = save_and_load(runner)
    assert checkpoint['pseudo_labels']['initialized'] is True
    assert len(checkpoint['pseudo_labels']['history']) == 2

    second = PseudoLabelHook()
    runner = make_runner(CleanDataset(observed, clean), second, resume=True)
    for hook in runner.hooks:
        hook.after_load_checkpoint(runner, checkpoint)
    start(runner)
    # the same pseudo labels, not 0.5 again
    assert torch.equal(store_of(runner)['targets'], saved)
    assert len(second.history) == 2
    run_epoch(runner, epochs[2], 2)
    assert torch.equal(store_of(runner)['targets'], full_targets)
    assert [h['epoch'] for h in second.history] == [1, 2, 3]

    # load_from without resume: a fresh start at 0.5
    fresh = PseudoLabelHook()
    runner = make_runner(CleanDataset(observed, clean), fresh)
    for hook in runner.hooks:
        hook.after_load_checkpoint(runner, checkpoint)
    start(runner)
    assert torch.all(store_of(runner)['targets'][
        torch.as_tensor(observed == -1)] == 0.5)


# ----------------------------------------------------------------------
# two ranks
# ----------------------------------------------------------------------
def two_rank_epoch(observed, clean, batches):
    from mmengine.dist import get_rank
    rank = get_rank()
    hook = PseudoLabelHook()
    runner = make_runner(CleanDataset(observed, clean), hook,
                         seed=100 + rank)
    start(runner)
    run_epoch(runner, batches[rank])
    return dict(targets=store_of(runner)['targets'].numpy().copy(),
                seed=hook._seed, history=hook.history)


def test_two_ranks_hold_the_same_pseudo_labels(tmp_path):
    observed, clean = partial_labels(num=30)
    batches = epoch_batches(30, 5, seed=4, batch_size=6)  # 5 batches
    # rank 1 also sees image batches[0][0][0] (a padded repeat)
    shards = [batches[0::2], batches[1::2] + [(batches[0][0][:1],
                                               np.zeros((1, 5)))]]
    rank0, rank1 = run_distributed(two_rank_epoch, (observed, clean, shards),
                                   out_dir=str(tmp_path))
    np.testing.assert_array_equal(rank0['targets'], rank1['targets'])
    assert rank0['seed'] == rank1['seed'] == 100
    assert rank0['history'] == rank1['history']
    # equal to one process that saw rank 0's batches, then rank 1's (the
    # higher rank wins a sample both wrote)
    hook = PseudoLabelHook()
    runner = make_runner(CleanDataset(observed, clean), hook)
    start(runner)
    init = store_of(runner)['targets'].clone()
    run_epoch(runner, shards[0] + shards[1])
    expected = expected_after(init.float(), observed, shards[0] + shards[1])
    np.testing.assert_array_equal(rank0['targets'],
                                  expected.half().numpy())
    unknown = observed == -1
    assert np.all(rank0['targets'][~unknown] == (observed == 1)[~unknown])
