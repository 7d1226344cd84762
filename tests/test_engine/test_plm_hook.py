"""PLMHook (partial label masking, Duarte et al.) and the head's training
prediction API it reads."""
import io
import json
import math
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from dist_utils import run_distributed
from fake_datasets import FakeTriStateDataset
from mmpretrain.registry import HOOKS, MODELS, TRANSFORMS
from mmpretrain.structures import DataSample

import mlimb_mm  # noqa: F401
from mlimb_mm.engine.hooks import LabelStoreHook, PLMHook
from mlimb_mm.engine.hooks.plm_hook import RATIOS_JSON
from mlimb_mm.models.utils.plm import plm_divergences, smoothed_distribution


# -- fakes --
class FakeHead(nn.Module):
    """The training-prediction API of TriStateLinearClsHead, fed by hand."""

    def __init__(self, device='cpu'):
        super().__init__()
        self.queues = {}
        self.device = device  # where the pushed logits are, as a model's

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
                dict(logits=torch.as_tensor(logits, dtype=torch.float32,
                                            device=self.device),
                     sample_idx=torch.as_tensor(sample_idx,
                                                dtype=torch.int64)))


class FakeModel(nn.Module):

    def __init__(self, head=None):
        super().__init__()
        self.head = head if head is not None else FakeHead()


class FakeHub:

    def __init__(self):
        self.info = {}

    def update_info(self, key, value):
        self.info[key] = value


def make_runner(observed,
                plm,
                store_hook=None,
                log_dir=None,
                resume=False,
                model=None,
                seed=0):
    store_hook = store_hook or LabelStoreHook()
    return SimpleNamespace(
        train_dataloader=SimpleNamespace(dataset=FakeTriStateDataset(observed)),
        hooks=[store_hook, plm],
        model=model or FakeModel(),
        epoch=0,
        iter=0,
        seed=seed,
        _resume=resume,
        log_dir=log_dir,
        message_hub=FakeHub())


def start(runner):
    for hook in runner.hooks:
        hook.before_train(runner)


def make_batch(indices, label_weights=None):
    samples = []
    for j, i in enumerate(indices):
        s = DataSample()
        s.set_metainfo({'sample_idx': int(i)})
        if label_weights is not None and label_weights[j] is not None:
            s.set_field(torch.as_tensor(label_weights[j]), 'label_weight')
        samples.append(s)
    return dict(inputs=[torch.zeros(1)] * len(indices), data_samples=samples)


def logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def synthetic_labels(num=200_000, seed=0):
    """Class 0: head (r = 3), class 1: tail (r ~ 0.0526), class 2: r = 1
    (target set equal), class 3: no negatives; 10% unknown labels."""
    rng = np.random.default_rng(seed)
    obs = np.zeros((num, 4), np.int8)
    obs[:, 0] = rng.random(num) < 0.75
    obs[:, 1] = rng.random(num) < 0.05
    obs[:, 2] = rng.random(num) < 0.5
    obs[:, 3] = 1
    obs[rng.random((num, 4)) < 0.1] = -1
    return obs


# -- registry, requirements --
def test_registered_priority_and_arguments():
    hook = HOOKS.build(dict(type='PLMHook', clip=(0, 1)))
    assert isinstance(hook, PLMHook)
    assert hook.priority == 'NORMAL'  # after LabelStoreHook (ABOVE_NORMAL)
    assert hook.lam == 0.01 and hook.num_bins == 10 and hook.clip == (0., 1.)
    with pytest.raises(ValueError, match='init_ratio'):
        PLMHook(init_ratio='median')
    with pytest.raises(ValueError, match='num_bins'):
        PLMHook(num_bins=1)
    with pytest.raises(ValueError, match='kl_eps'):
        PLMHook(kl_eps=0)
    with pytest.raises(ValueError, match='low > high'):
        PLMHook(clip=(1, 0))


def test_needs_label_store_hook_and_a_recording_head():
    obs = synthetic_labels(100)
    plm = PLMHook(seed=0)
    runner = make_runner(obs, plm)
    runner.hooks = [plm]
    with pytest.raises(RuntimeError, match="LabelStoreHook'.*custom_hooks"):
        plm.before_train(runner)
    runner = make_runner(obs, plm, model=nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(TypeError, match='records its training predictions'):
        start(runner)


def test_iter_based_loop_is_refused():
    from mmengine.runner import IterBasedTrainLoop
    plm = PLMHook(seed=0)
    runner = make_runner(synthetic_labels(100), plm)
    runner.train_loop = IterBasedTrainLoop.__new__(IterBasedTrainLoop)
    with pytest.raises(TypeError, match='epoch-based'):
        plm.before_train(runner)


# -- Eq. (3): masks --
def test_masks_realise_the_target_ratio_per_class():
    obs = synthetic_labels()
    plm = PLMHook(seed=3, chunk_elems=100_000)  # several chunks
    runner = make_runner(obs, plm)
    start(runner)
    r = plm.dataset_ratio
    assert r[0] == pytest.approx(3, rel=0.02)
    assert r[1] == pytest.approx(0.05 / 0.95, rel=0.03)
    assert math.isinf(r[3]) and not plm.maskable[3]
    target = torch.tensor([0.8, 0.4, float(r[2]), 0.5], dtype=torch.float64)
    plm.ratio = target.clone()
    plm.before_train_epoch(runner)
    mask = plm_store(runner)[plm.mask_field].bool().numpy()
    obs_pos, obs_neg = obs == 1, obs == 0
    for k in (0, 1):
        kept_pos = (mask[:, k] & obs_pos[:, k]).sum()
        kept_neg = (mask[:, k] & obs_neg[:, k]).sum()
        if k == 0:  # head: positives masked, negatives all kept
            assert kept_neg == obs_neg[:, k].sum()
            p = float(target[k] / r[k])
            n = obs_pos[:, k].sum()
        else:  # tail: negatives masked, positives all kept
            assert kept_pos == obs_pos[:, k].sum()
            p = float(r[k] / target[k])
            n = obs_neg[:, k].sum()
        # binomial sampling error of the masked side, 5 sigma
        rel_sd = math.sqrt((1 - p) / (n * p))
        assert kept_pos / kept_neg == pytest.approx(float(target[k]),
                                                    rel=5 * rel_sd)
        assert abs(kept_pos / kept_neg - float(r[k])) > 10 * rel_sd * r[k]
    # ratio already equal to the target, and a class without negatives:
    # never masked
    assert mask[:, 2].all() and mask[:, 3].all()
    # unknown labels are never masked
    assert mask[obs == -1].all()
    stats = plm.last_mask_stats
    assert stats['pos_kept'][0] == (mask[:, 0] & obs_pos[:, 0]).sum()


def plm_store(runner):
    from mlimb_mm.engine.hooks import get_label_store
    return get_label_store(runner)


def test_masks_reproducible_per_epoch_and_redrawn_each_epoch():
    obs = synthetic_labels(5000)
    masks = []
    for _ in range(2):
        plm = PLMHook(seed=11, init_ratio='mean')
        runner = make_runner(obs, plm)
        start(runner)
        epochs = []
        for epoch in range(2):
            runner.epoch = epoch
            plm.before_train_epoch(runner)
            epochs.append(plm_store(runner)[plm.mask_field].clone())
        masks.append(epochs)
    assert torch.equal(masks[0][0], masks[1][0])
    assert torch.equal(masks[0][1], masks[1][1])
    assert not torch.equal(masks[0][0], masks[0][1])
    assert masks[0][0].dtype == torch.uint8


def test_init_ratio_mean_and_clip():
    obs = synthetic_labels(20_000)
    plm = PLMHook(seed=0, init_ratio='mean', clip=(0, 1))
    start(make_runner(obs, plm))
    r = plm.dataset_ratio
    mean = r[plm.maskable].mean()
    assert mean > 1  # (3 + 0.05 + 1) / 3
    # the clip holds for the initial ratio; classes without a ratio keep r
    assert plm.ratio[:3].tolist() == [1.0] * 3
    assert math.isinf(plm.ratio[3])
    plm = PLMHook(seed=0, init_ratio='mean')
    start(make_runner(obs, plm))
    assert plm.ratio[:3].tolist() == pytest.approx([float(mean)] * 3)


# -- label_weight composition --
def test_label_weight_composes_by_multiplication():
    obs = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], np.int8)
    plm = PLMHook(seed=0)
    runner = make_runner(obs, plm)
    start(runner)
    store = plm_store(runner)
    plm.before_train_epoch(runner)
    # a known mask, written where the hook keeps it
    mask = torch.tensor([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0]],
                        dtype=torch.uint8)
    store[plm.mask_field].copy_(mask)
    existing = torch.tensor([0.5, 2.0, 3.0])
    batch = make_batch([0, 1, 3], [existing, None, existing])
    runner.hooks[0].before_train_iter(runner, 0, batch)  # LabelStoreHook
    got = [s.label_weight for s in batch['data_samples']]
    assert got[0].tolist() == [0.5, 0.0, 3.0]  # existing * mask
    assert got[1].tolist() == [0.0, 1.0, 1.0]  # created as ones * mask
    assert got[2].tolist() == [0.0, 0.0, 0.0]
    assert got[1].dtype == torch.float32
    # the caller's tensor is not modified in place
    assert existing.tolist() == [0.5, 2.0, 3.0]


def test_label_weight_after_label_store_injection():
    """LabelStoreHook (ABOVE_NORMAL) injects a stored weight first; PLM
    (NORMAL) multiplies it."""
    obs = np.array([[1, 0], [0, 1]], np.int8)
    store_hook = LabelStoreHook(
        fields=dict(weights=dict(dtype='float32', fill=0.25)),
        inject=dict(weights='label_weight'))
    plm = PLMHook(seed=0)
    runner = make_runner(obs, plm, store_hook=store_hook)
    start(runner)
    plm.before_train_epoch(runner)
    plm_store(runner)[plm.mask_field][1, 0] = 0
    batch = make_batch([0, 1])
    for hook in sorted(runner.hooks, key=lambda h: h.priority == 'NORMAL'):
        hook.before_train_iter(runner, 0, batch)
    got = [s.label_weight.tolist() for s in batch['data_samples']]
    assert got == [[0.25, 0.25], [0.0, 0.25]]


# -- histograms and Eq. (5)-(7) --
def test_kl_by_hand_on_the_papers_toy_example():
    """Appendix B: 5 positives and 5 negatives, tau = 4."""
    obs = np.array([[1]] * 5 + [[0]] * 5, np.int8)
    probs = [0.2, 0.6, 0.95, 0.99, 0.45, 0.1, 0.15, 0.8, 0.4, 0.3]
    eps = 1e-3
    plm = PLMHook(seed=0, num_bins=4, kl_eps=eps)
    runner = make_runner(obs, plm)
    start(runner)
    plm.before_train_epoch(runner)
    runner.model.head.push(logit(probs)[:, None], np.arange(10))
    plm.after_train_iter(runner, 0, None)
    # bins of width 1/4
    assert plm.hist[0, 0].tolist() == [1, 1, 1, 2]
    assert plm.hist[1, 0].tolist() == [2, 2, 0, 1]

    def smooth(h):
        h = [v / sum(h) for v in h]
        return [(v + eps) / (1 + 4 * eps) for v in h]

    def kl(p, q):
        return sum(a * math.log(a / b) for a, b in zip(p, q))

    d_pos_hand = kl(smooth([1, 1, 1, 2]), smooth([0, 0, 0, 1]))
    d_neg_hand = kl(smooth([2, 2, 0, 1]), smooth([1, 0, 0, 0]))
    d_pos, d_neg, seen = plm_divergences(plm.hist, eps)
    assert d_pos.item() == pytest.approx(d_pos_hand, rel=1e-12)
    assert d_neg.item() == pytest.approx(d_neg_hand, rel=1e-12)
    assert seen.tolist() == [True]
    # smoothing: rows sum to one, no zero bin
    s = smoothed_distribution(torch.tensor([[0., 0, 0, 3]]), eps)
    assert s.sum().item() == pytest.approx(1) and (s > 0).all()


def constructed_epoch(plm, runner, num):
    """Class 0 over-predicted (negatives near 0.8), class 1 under-predicted
    (positives near 0.05), class 2 well calibrated; fed in 4 batches through
    the head -> after_train_iter path."""
    obs = runner.train_dataloader.dataset.labels
    rng = np.random.default_rng(0)
    probs = np.empty(obs.shape)
    good_pos, good_neg = rng.uniform(0.9, 1, obs.shape), rng.uniform(
        0, 0.1, obs.shape)
    probs[:] = np.where(obs == 1, good_pos, good_neg)
    probs[:, 0] = np.where(obs[:, 0] == 1, good_pos[:, 0],
                           rng.uniform(0.6, 0.9, num))
    probs[:, 1] = np.where(obs[:, 1] == 1, rng.uniform(0, 0.1, num),
                           good_neg[:, 1])
    for batch in np.array_split(np.arange(num), 4):
        runner.model.head.push(logit(probs[batch]), batch)
        plm.after_train_iter(runner, 0, make_batch(batch))


def test_ratio_moves_up_when_positives_under_predicted_and_down_when_over(
        device):
    num = 400
    rng = np.random.default_rng(1)
    obs = (rng.random((num, 3)) < [0.6, 0.1, 0.3]).astype(np.int8)
    plm = PLMHook(seed=0, lam=0.1)
    runner = make_runner(obs, plm, model=FakeModel(FakeHead(device)))
    start(runner)
    before = plm.ratio.clone()
    plm.before_train_epoch(runner)
    constructed_epoch(plm, runner, num)
    assert int(plm.hist.sum()) == num * 3  # every observed label counted
    # the histograms are counted where the logits are
    assert plm.hist.device.type == device.type
    plm.after_train_epoch(runner)
    assert plm.ratio.device.type == 'cpu' and plm.hist is None
    after = plm.ratio
    assert after[0] < before[0]  # over-predicted head class: down
    assert after[1] > before[1]  # under-predicted tail class: up
    assert len(plm.history) == 2 and torch.equal(plm.history[1], after)
    d_pos, d_neg = plm.kl_history[0]
    assert d_pos[1] > d_pos[0] and d_neg[0] > d_neg[1]
    assert runner.message_hub.info['plm/ratios'] == after.tolist()


def test_count_masked_false_skips_masked_labels():
    obs = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], np.int8)
    for count_masked, expected in ((True, 8), (False, 6)):
        plm = PLMHook(seed=0, count_masked=count_masked)
        runner = make_runner(obs, plm)
        start(runner)
        plm.before_train_epoch(runner)
        plm_store(runner)[plm.mask_field][0] = 0
        runner.model.head.push(torch.zeros(4, 2), [0, 1, 2, 3])
        plm.after_train_iter(runner, 0, None)
        assert int(plm.hist.sum()) == expected


def test_history_json_is_written(tmp_path):
    num = 200
    rng = np.random.default_rng(2)
    obs = (rng.random((num, 3)) < [0.6, 0.1, 0.3]).astype(np.int8)
    plm = PLMHook(seed=0)
    runner = make_runner(obs, plm, log_dir=str(tmp_path))
    start(runner)
    for epoch in range(2):
        runner.epoch = epoch
        plm.before_train_epoch(runner)
        constructed_epoch(plm, runner, num)
        plm.after_train_epoch(runner)
    with open(osp.join(tmp_path, RATIOS_JSON)) as f:
        data = json.load(f)
    assert data['epochs'] == [0, 1, 2]
    assert data['classes'] == ['c0', 'c1', 'c2']
    assert data['ratios'][0] == pytest.approx(plm.dataset_ratio.tolist())
    assert data['ratios'][-1] == pytest.approx(plm.ratio.tolist())
    assert len(data['kl_pos']) == 2
    assert data['ratios'][2][0] < data['ratios'][1][0] < data['ratios'][0][0]


# -- the real head --
def packed_sample(tristate, sample_idx):
    pack = TRANSFORMS.build(dict(type='PackMultiLabelInputs'))
    return pack(
        dict(img=np.zeros((4, 4, 3), np.uint8),
             gt_tristate=np.array(tristate, np.int8),
             sample_idx=sample_idx))['data_samples']


def test_head_records_training_logits_only_for_consumers():
    head = MODELS.build(
        dict(type='TriStateLinearClsHead', num_classes=3, in_channels=4))
    feats = (torch.randn(2, 4), )
    samples = [packed_sample([1, 0, -1], 5), packed_sample([0, 1, 0], 9)]
    loss_before = head.loss(feats, samples)['loss']
    assert head._train_prediction_queues == {}  # nothing kept by default
    with pytest.raises(KeyError, match='enable_train_predictions'):
        head.pop_train_predictions('a')
    head.enable_train_predictions('a')
    head.enable_train_predictions('b')
    loss = head.loss(feats, samples)['loss']
    assert loss.item() == pytest.approx(loss_before.item())  # unchanged
    records = head.pop_train_predictions('a')
    assert len(records) == 1
    logits = records[0]['logits']
    assert not logits.requires_grad
    assert torch.allclose(logits, head(feats))
    assert records[0]['sample_idx'].tolist() == [5, 9]
    assert head.pop_train_predictions('a') == []
    assert len(head.pop_train_predictions('b')) == 1  # own queue
    head.eval()
    head.loss(feats, samples)
    assert head.pop_train_predictions('a') == []  # training mode only
    head.disable_train_predictions('a')
    with pytest.raises(KeyError):
        head.pop_train_predictions('a')


def test_hook_reads_the_real_head_through_a_model_wrapper():
    from mmengine.model import MMDistributedDataParallel
    obs = np.array([[1, 0, -1], [0, 1, 0]], np.int8)
    head = MODELS.build(
        dict(type='TriStateLinearClsHead', num_classes=3, in_channels=4))
    wrapped = MMDistributedDataParallel.__new__(MMDistributedDataParallel)
    nn.Module.__init__(wrapped)
    wrapped.module = FakeModel(head)
    plm = PLMHook(seed=0)
    runner = make_runner(obs, plm, model=wrapped)
    start(runner)
    plm.before_train_epoch(runner)
    samples = [packed_sample([1, 0, -1], 0), packed_sample([0, 1, 0], 1)]
    head.loss((torch.randn(2, 4), ), samples)
    plm.after_train_iter(runner, 0, None)
    assert int(plm.hist.sum()) == 5  # the unknown label is not counted
    plm.after_train(runner)
    assert plm.CONSUMER not in head._train_prediction_queues


# -- checkpoint --
def run_epochs(plm, runner, epochs, num):
    for epoch in epochs:
        runner.epoch = epoch
        plm.before_train_epoch(runner)
        constructed_epoch(plm, runner, num)
        plm.after_train_epoch(runner)


def test_checkpoint_round_trip_and_resumed_run_continues(tmp_path):
    num = 300
    rng = np.random.default_rng(4)
    obs = (rng.random((num, 3)) < [0.6, 0.1, 0.3]).astype(np.int8)

    # uninterrupted: 3 epochs
    full = PLMHook(lam=0.2)
    runner = make_runner(obs, full, seed=21)
    start(runner)
    run_epochs(full, runner, range(3), num)
    full_mask_epoch3 = None
    runner.epoch = 3
    full.before_train_epoch(runner)
    full_mask_epoch3 = plm_store(runner)[full.mask_field].clone()

    # interrupted after 2 epochs, saved, resumed with another runner seed
    first = PLMHook(lam=0.2)
    runner = make_runner(obs, first, seed=21)
    start(runner)
    run_epochs(first, runner, range(2), num)
    checkpoint = {}
    for hook in runner.hooks:
        hook.before_save_checkpoint(runner, checkpoint)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    assert set(checkpoint['plm']) >= {
        'ratio', 'history', 'seed', 'mask_epoch', 'hist'
    }

    second = PLMHook(lam=0.2)
    runner = make_runner(obs, second, resume=True, seed=999)
    for hook in runner.hooks:
        hook.after_load_checkpoint(runner, checkpoint)
    start(runner)
    assert torch.equal(second.ratio, first.ratio)
    assert len(second.history) == 3
    assert all(
        torch.equal(a, b) for a, b in zip(second.history, first.history))
    assert second._seed == 21 and second.mask_epoch == 1
    run_epochs(second, runner, [2], num)
    assert torch.equal(second.ratio, full.ratio)
    runner.epoch = 3
    second.before_train_epoch(runner)
    assert torch.equal(plm_store(runner)[second.mask_field], full_mask_epoch3)

    # load_from (no resume): starts afresh
    fresh = PLMHook(lam=0.2)
    runner = make_runner(obs, fresh, resume=False)
    fresh.after_load_checkpoint(runner, checkpoint)
    start(runner)
    assert torch.equal(fresh.ratio, fresh.dataset_ratio)
    assert len(fresh.history) == 1


def test_mid_epoch_histograms_are_saved_and_reset_when_the_epoch_restarts():
    num = 100
    obs = (np.random.default_rng(5).random((num, 3)) < 0.4).astype(np.int8)
    plm = PLMHook(seed=0)
    runner = make_runner(obs, plm)
    start(runner)
    plm.before_train_epoch(runner)
    runner.model.head.push(torch.zeros(10, 3), np.arange(10))
    plm.after_train_iter(runner, 0, None)
    checkpoint = {}
    plm.before_save_checkpoint(runner, checkpoint)
    assert int(checkpoint['plm']['hist'].sum()) == 30
    assert checkpoint['plm']['hist_epoch'] == 0
    resumed = PLMHook(seed=0)
    runner = make_runner(obs, resumed, resume=True)
    resumed.after_load_checkpoint(runner, checkpoint)
    start(runner)
    assert int(resumed.hist.sum()) == 30
    resumed.before_train_epoch(runner)  # the epoch restarts from batch 0
    assert resumed.hist is None


# -- two ranks --
def two_rank_epoch(obs, batches):
    from mmengine.dist import get_rank
    rank = get_rank()
    plm = PLMHook(lam=0.5)  # seed from the runner, broadcast from rank 0
    runner = make_runner(obs, plm, seed=100 + rank)
    start(runner)
    plm.before_train_epoch(runner)
    mask0 = plm_store(runner)[plm.mask_field].clone()
    for batch in batches[rank]:
        runner.model.head.push(logit(batch['probs']), batch['idx'])
        plm.after_train_iter(runner, 0, None)
    local = plm.hist.numpy().copy()
    plm.after_train_epoch(runner)
    runner.epoch = 1
    plm.before_train_epoch(runner)
    return dict(ratio=plm.ratio.numpy(),
                seed=plm._seed,
                local=local,
                kl=plm.kl_history[0][0].numpy(),
                mask0=mask0.numpy(),
                mask1=plm_store(runner)[plm.mask_field].numpy().copy())


def test_two_ranks_end_the_epoch_with_identical_ratios(tmp_path):
    num = 120
    rng = np.random.default_rng(6)
    obs = (rng.random((num, 3)) < [0.6, 0.1, 0.3]).astype(np.int8)
    probs = rng.random((num, 3))
    probs[:, 1] = np.where(obs[:, 1] == 1, 0.05, probs[:, 1] * 0.2)
    order = rng.permutation(num)
    batches = [[], []]
    for i, chunk in enumerate(np.array_split(order, 5)):  # 3 + 2
        batches[i % 2].append(dict(idx=chunk, probs=probs[chunk]))
    rank0, rank1 = run_distributed(two_rank_epoch, (obs, batches),
                                   out_dir=str(tmp_path))
    # different batches, hence different local histograms ...
    assert rank0['local'].sum() == 72 * 3 and rank1['local'].sum() == 48 * 3
    assert not np.array_equal(rank0['local'], rank1['local'])
    assert rank0['seed'] == rank1['seed'] == 100  # rank 0's seed
    np.testing.assert_array_equal(rank0['ratio'], rank1['ratio'])
    np.testing.assert_array_equal(rank0['mask0'], rank1['mask0'])
    np.testing.assert_array_equal(rank0['mask1'], rank1['mask1'])

    # ... and equal to one process that saw every batch
    plm = PLMHook(lam=0.5, seed=100)
    runner = make_runner(obs, plm)
    start(runner)
    plm.before_train_epoch(runner)
    for batch in batches[0] + batches[1]:
        runner.model.head.push(logit(batch['probs']), batch['idx'])
        plm.after_train_iter(runner, 0, None)
    plm.after_train_epoch(runner)
    np.testing.assert_allclose(rank0['ratio'], plm.ratio.numpy(), rtol=1e-12)
    assert not np.allclose(rank0['ratio'], plm.history[0].numpy())
