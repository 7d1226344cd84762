"""LabelRefinementHook wires the pass, the GMMs and the categories into the
label store, its history, its export and its checkpoint."""
import csv
import glob
import json
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fake_datasets import FakeTriStateDataset
from mmpretrain.registry import HOOKS

import mlimb_mm  # noqa: F401
from mlimb_mm.engine.hooks import LabelRefinementHook, LabelStoreHook
from mlimb_mm.models.utils.label_refinement import (CLEAN, categorize_labels,
                                                    fit_label_gmms)


class NoisyFake(FakeTriStateDataset):
    """The fake dataset with the clean labels a noise wrapper keeps."""

    def __init__(self, labels, clean):
        super().__init__(labels)
        self.clean = clean

    def get_clean_tristate_labels(self):
        return self.clean


def noisy_problem(num=400, num_classes=3, seed=0):
    """Observed labels with 25% flipped; flipped labels have large losses;
    the views predict the clean label confidently for half the images."""
    rng = np.random.default_rng(seed)
    clean = (rng.random((num, num_classes)) < 0.4).astype(np.int8)
    flip = rng.random((num, num_classes)) < 0.25
    observed = np.where(flip, 1 - clean, clean).astype(np.int8)
    observed[0, 0] = -1  # an unknown label is never managed
    losses = np.where(flip, rng.normal(2.0, 0.3, flip.shape),
                      rng.normal(0.3, 0.1, flip.shape)).clip(0.01)
    confident = rng.random(num) < 0.5
    view_probs = np.where(confident[:, None], np.where(clean == 1, .99, .01),
                          0.5)
    return observed, clean, torch.tensor(losses).float(), torch.tensor(
        view_probs).float()


def make_runner(tmp_path, observed, clean, hooks):
    return SimpleNamespace(
        train_dataloader=SimpleNamespace(dataset=NoisyFake(observed, clean)),
        hooks=hooks, model=None, train_loop=None, seed=0, epoch=0,
        log_dir=str(tmp_path), message_hub=None, _resume=False)


def test_refinement_writes_store_history_and_export(tmp_path):
    observed, clean, losses, view_probs = noisy_problem()
    store_hook = LabelStoreHook()
    hook = HOOKS.build(dict(type='LabelRefinementHook', warmup_epochs=2,
                            group_thresholds=(100, 150)))
    runner = make_runner(tmp_path, observed, clean, [store_hook, hook])
    calls = []

    def fake_pass(runner_, seed, num_samples, targets, observed):
        calls.append(seed)
        assert torch.equal(targets, (observed == 1).float())
        return dict(probs=view_probs, view_probs=view_probs, losses=losses)

    hook.training_set_pass.run = fake_pass
    store_hook.before_train(runner)
    hook.before_train(runner)
    runner.epoch = 0  # epoch 1 done: still warming up
    hook.after_train_epoch(runner)
    assert calls == [] and torch.equal(
        store_hook.store['weights'], torch.ones(observed.shape).half())
    runner.epoch = 1
    hook.after_train_epoch(runner)
    assert len(calls) == 1

    # the store holds Eq. (8)-(10) of the GMMs of the pass's losses
    obs = torch.from_numpy(observed)
    clean_prob, _ = fit_label_gmms(losses, obs, num_bins=4096)
    expected = categorize_labels(clean_prob.float(), view_probs, obs)
    store = store_hook.store
    torch.testing.assert_close(store['targets'].float(),
                               expected['targets'])
    torch.testing.assert_close(store['weights'].float(), expected['weights'],
                               atol=1e-3, rtol=0)
    assert hook.last_pass[0] == 2

    summary = hook.history[-1]
    assert summary['epoch'] == 2 and summary['clean_precision'] > 0.95
    assert summary['per_class']['clean'] == (
        expected['category'] == CLEAN).sum(0).tolist()
    counts = (clean == 1).sum(0)
    assert set(summary['groups']) == {'all', 'many', 'medium', 'few'}
    assert summary['groups']['many']['classes'] == int((counts > 150).sum())
    (history_json, ) = glob.glob(osp.join(tmp_path, 'label_refinement.json'))
    with open(history_json) as f:
        assert json.load(f)['refinements'][0]['epoch'] == 2

    # the export: the labels not marked clean, least trustworthy first
    with open(osp.join(tmp_path, 'noisy_labels.csv')) as f:
        rows = list(csv.DictReader(f))
    unclean = (expected['category'] != CLEAN) & (obs >= 0)
    assert len(rows) == int(unclean.sum())
    probs = [float(r['clean_prob']) for r in rows]
    assert probs == sorted(probs)
    first = rows[0]
    i, k = int(first['sample_idx']), int(first['class_name'][1:])
    assert first['image'] == f'images/{i:05d}.jpg'
    assert int(first['observed']) == observed[i, k]
    assert first['category'] in ('relabelled', 'ambiguous')
    # most of the exported labels are wrong: that is what it is for
    wrong = [observed[int(r['sample_idx']), int(r['class_name'][1:])] !=
             clean[int(r['sample_idx']), int(r['class_name'][1:])]
             for r in rows]
    assert np.mean(wrong) > 0.8


def test_refinement_with_the_model_on_the_device(tmp_path, device):
    """The real pass runs the model on its device (tensor-space views) and
    gathers the (N, K) losses and predictions on the CPU, where the store
    is; the refinement equals the CPU run's."""
    from test_training_set_pass import MeanPixelModel, batches
    observed = np.array([[1, 0], [1, 1], [1, 0], [0, 1]] * 4, np.int8)
    results = {}
    for where in ('cpu', device):
        store_hook = LabelStoreHook()
        hook = LabelRefinementHook(warmup_epochs=0, export=None,
                                   gmm_cfg=dict(min_count=2))
        runner = make_runner(tmp_path, observed, observed,
                             [store_hook, hook])
        runner.model = MeanPixelModel().to(where)
        loaded = batches([list(range(8)), list(range(8, 16))], 0)
        for sample in [s for b in loaded for s in b['data_samples']]:
            sample.set_field(torch.from_numpy(
                observed[sample.metainfo['sample_idx']]), 'gt_tristate')
        hook.training_set_pass._loader = loaded
        store_hook.before_train(runner)
        hook.before_train(runner)
        hook.after_train_epoch(runner)
        assert runner.model.devices == {torch.device(where).type}
        store = store_hook.store
        assert store['targets'].device.type == 'cpu'
        results[str(where)] = (store['targets'].clone(),
                               store['weights'].clone(),
                               hook.last_pass[1])
    for got, expected in zip(results[str(device)], results['cpu']):
        torch.testing.assert_close(got.float(), expected.float(),
                                   atol=2e-3, rtol=0)


def test_state_goes_to_the_checkpoint_and_back(tmp_path):
    observed, clean, losses, view_probs = noisy_problem(num=100)
    hook = LabelRefinementHook(warmup_epochs=0, export=None)
    store_hook = LabelStoreHook()
    runner = make_runner(tmp_path, observed, clean, [store_hook, hook])
    hook.training_set_pass.run = lambda *a, **k: dict(
        probs=view_probs, view_probs=view_probs, losses=losses)
    store_hook.before_train(runner)
    hook.before_train(runner)
    hook.after_train_epoch(runner)
    checkpoint = {}
    hook.before_save_checkpoint(runner, checkpoint)
    assert checkpoint['label_refinement']['history'][0]['epoch'] == 1
    resumed = LabelRefinementHook(warmup_epochs=0)
    runner._resume = True
    resumed.after_load_checkpoint(runner, checkpoint)
    assert resumed.history == []  # kept until set up
    resumed.before_train(runner)
    assert resumed.history == checkpoint['label_refinement']['history']
    assert not osp.exists(osp.join(tmp_path, 'noisy_labels.csv'))


def test_arguments_are_checked():
    with pytest.raises(ValueError, match='tau'):
        LabelRefinementHook(tau=0.4)
    with pytest.raises(ValueError, match='export'):
        LabelRefinementHook(export='some')
    with pytest.raises(ValueError, match='warmup_epochs'):
        LabelRefinementHook(warmup_epochs=-1)
    # without re-labelling the pass makes no views
    assert LabelRefinementHook(use_relabel=False).training_set_pass\
        .num_views == 0
