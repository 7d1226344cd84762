"""BalanceMix: the mixing preprocessor, the label-wise management and the
hook's checks."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fake_datasets import FakeTriStateDataset
from mmpretrain.registry import HOOKS, MODELS
from mmpretrain.structures import DataSample

import mlimb_mm  # noqa: F401
from mlimb_mm.datasets.samplers import BalanceMixSampler
from mlimb_mm.engine.hooks import (BalanceMixHook, LabelRefinementHook,
                                   LabelStoreHook)
from mlimb_mm.engine.training_set_pass import (split_views,
                                               tensor_view_augment,
                                               with_views)
from mlimb_mm.models.utils.label_refinement import (AMBIGUOUS, CLEAN,
                                                    RELABELLED, UNKNOWN,
                                                    categorize_labels,
                                                    summarize_categories)


def fake_runner(sampler, batch_size, hooks, labels):
    loader = SimpleNamespace(sampler=sampler, batch_size=batch_size,
                             dataset=FakeTriStateDataset(labels))
    pre = MODELS.build(dict(type='BalanceMixDataPreprocessor',
                            num_classes=labels.shape[1]))
    model = SimpleNamespace(data_preprocessor=pre, head=None)
    return SimpleNamespace(train_dataloader=loader, hooks=hooks,
                           model=model, train_loop=None, seed=0)


# ----------------------------------------------------------------------
# mixing, Eq. (5)
# ----------------------------------------------------------------------
def make_batch(num, num_classes=4):
    inputs, samples = [], []
    for i in range(num):
        inputs.append(torch.full((3, 4, 4), float(i * 10), dtype=torch.uint8))
        score = torch.zeros(num_classes)
        score[i % num_classes] = 1
        s = DataSample(metainfo=dict(sample_idx=100 + i)).set_gt_score(score)
        s.set_field(torch.full((num_classes, ), 0.1 * (i + 1)),
                    'label_weight')
        s.set_field(torch.tensor([1, 0, -1, 0][:num_classes]), 'gt_tristate')
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_preprocessor_mixes_on_the_models_device(device):
    """On a GPU the preprocessor mixes the device batch with the same lam
    as on the CPU (CPU generator): same images and scores, on the device;
    the random half's other fields are kept."""
    outs = {}
    for where in ('cpu', device):
        pre = MODELS.build(dict(type='BalanceMixDataPreprocessor',
                                alpha=4.0, seed=3, num_classes=4)).to(where)
        out = pre(make_batch(4), training=True)
        assert out['inputs'].device.type == torch.device(where).type
        assert out['data_samples'][0].gt_score.device.type == \
            torch.device(where).type
        outs[str(where)] = (float(pre.last_lam), out['inputs'].cpu(),
                            torch.stack([s.gt_score.cpu()
                                         for s in out['data_samples']]))
        assert [s.metainfo['sample_idx']
                for s in out['data_samples']] == [100, 101]
    lam, inputs, scores = outs['cpu']
    assert outs[str(device)][0] == lam and 0.5 <= lam <= 1
    torch.testing.assert_close(outs[str(device)][1], inputs)
    torch.testing.assert_close(outs[str(device)][2], scores)


@pytest.mark.parametrize('seed', range(6))
def test_preprocessor_mixes_halves_with_lam_at_least_half(seed):
    pre = MODELS.build(dict(type='BalanceMixDataPreprocessor', alpha=4.0,
                            seed=seed, num_classes=4))
    out = pre(make_batch(4), training=True)
    x, samples = out['inputs'], out['data_samples']
    assert x.shape[0] == 2 and len(samples) == 2
    lam = float(pre.last_lam)
    assert 0.5 <= lam <= 1
    for i, s in enumerate(samples):
        r, m = i, i + 2
        # inputs: lam x_R + (1 - lam) x_M
        expected = lam * 10 * r + (1 - lam) * 10 * m
        torch.testing.assert_close(x[i], torch.full_like(x[i], expected))
        # scores: lam y_R + (1 - lam) y_M
        exp_score = torch.zeros(4)
        exp_score[r % 4] += lam
        exp_score[m % 4] += 1 - lam
        torch.testing.assert_close(s.gt_score, exp_score)
        # the random image's fields are kept
        assert s.metainfo['sample_idx'] == 100 + r
        torch.testing.assert_close(s.label_weight,
                                   torch.full((4, ), 0.1 * (r + 1)))


def test_preprocessor_eval_is_plain_and_odd_batch_refused():
    pre = MODELS.build(dict(type='BalanceMixDataPreprocessor',
                            num_classes=4))
    out = pre(make_batch(3), training=False)
    assert out['inputs'].shape[0] == 3
    with pytest.raises(ValueError, match='2B'):
        pre(make_batch(3), training=True)
    with pytest.raises(ValueError, match='batch_augments'):
        MODELS.build(dict(type='BalanceMixDataPreprocessor', num_classes=4,
                          batch_augments=dict(augments=[])))


# ----------------------------------------------------------------------
# label-wise management, Eq. (8)-(10)
# ----------------------------------------------------------------------
def constructed():
    #            clean  relabel->1  relabel->0  ambiguous  unknown
    observed = torch.tensor([[1, 0, 1, 0, -1],
                             [0, 1, 0, 1, -1]], dtype=torch.int8)
    clean_prob = torch.tensor([[0.9, 0.2, 0.3, 0.4, 0.0],
                               [0.51, 0.1, 0.45, 0.25, 0.0]])
    mean_pred = torch.tensor([[0.1, 0.98, 0.01, 0.5, 0.9],
                              [0.99, 0.975, 0.0249, 0.03, 0.1]])
    return observed, clean_prob, mean_pred


def test_categorize_follows_the_equations():
    observed, clean_prob, mean_pred = constructed()
    out = categorize_labels(clean_prob, mean_pred, observed, tau=0.975)
    cat = out['category']
    expected_cat = torch.tensor([[CLEAN, RELABELLED, RELABELLED, AMBIGUOUS,
                                  UNKNOWN],
                                 [CLEAN, RELABELLED, RELABELLED, AMBIGUOUS,
                                  UNKNOWN]], dtype=torch.int8)
    assert torch.equal(cat, expected_cat)
    # clean: observed target (even against a confident prediction)
    assert out['targets'][0, 0] == 1 and out['targets'][1, 0] == 0
    # re-labelled: >= tau -> 1, < 1 - tau -> 0, weight 1
    assert out['targets'][0, 1] == 1 and out['targets'][1, 1] == 1
    assert out['targets'][0, 2] == 0 and out['targets'][1, 2] == 0
    # ambiguous: observed target, weight = clean posterior (Eq. 10)
    assert out['targets'][0, 3] == 0 and out['targets'][1, 3] == 1
    torch.testing.assert_close(out['weights'][:, 3],
                               torch.tensor([0.4, 0.25]))
    torch.testing.assert_close(out['weights'][:, :3], torch.ones(2, 3))
    # unknown: not managed
    assert out['targets'][0, 4] == 0 and out['weights'][0, 4] == 1


def test_categorize_single_positive_threshold():
    observed, clean_prob, mean_pred = constructed()
    out = categorize_labels(clean_prob, mean_pred, observed, tau=0.55)
    # 0.5 is neither >= 0.55 nor < 0.45: still ambiguous
    assert out['category'][0, 3] == AMBIGUOUS
    # 0.03 < 0.45: re-labelled to 0 with tau 0.55, ambiguous with 0.975
    assert out['category'][1, 3] == RELABELLED
    assert out['targets'][1, 3] == 0


def test_table5_switches():
    observed, clean_prob, mean_pred = constructed()
    off = categorize_labels(clean_prob, mean_pred, observed,
                            use_clean=False, use_relabel=False,
                            use_ambiguous=False)
    assert torch.equal(off['targets'], (observed == 1).float())
    assert torch.equal(off['weights'], torch.ones(2, 5))
    clean_only = categorize_labels(clean_prob, mean_pred, observed,
                                   use_relabel=False, use_ambiguous=False)
    assert torch.equal(clean_only['weights'][:, 0], torch.ones(2))
    assert torch.equal(clean_only['weights'][:, 1:4], torch.zeros(2, 3))
    assert torch.equal(clean_only['targets'][:, :4],
                       (observed[:, :4] == 1).float())
    relabel = categorize_labels(clean_prob, mean_pred, observed,
                                use_ambiguous=False)
    assert torch.equal(relabel['weights'][:, :3], torch.ones(2, 3))
    assert torch.equal(relabel['weights'][:, 3], torch.zeros(2))
    # the label-wise management is LabelRefinementHook's: BalanceMixHook
    # says where its old switches went
    with pytest.raises(TypeError, match='LabelRefinementHook'):
        BalanceMixHook(use_clean=False)


def test_summary_counts_and_clean_precision_by_hand(device):
    observed, clean_prob, mean_pred = constructed()
    truth = observed.numpy().copy()
    observed = observed.to(device)
    out = categorize_labels(clean_prob.to(device), mean_pred.to(device),
                            observed)
    assert out['category'].device.type == device.type
    truth[0, 0] = 0  # the clean-marked positive of row 0 is a wrong label
    s = summarize_categories(out['category'], observed, out['targets'],
                             out['weights'], truth)
    assert s['clean_pos'] == 1 and s['clean_neg'] == 1
    assert s['relabelled_to_1'] == 2 and s['relabelled_to_0'] == 2
    assert s['relabelled_flipped'] == 2  # (0,1): 0->1, (0,2): 1->0
    assert s['ambiguous'] == 2 and s['observed'] == 8
    assert s['clean_precision'] == 0.5
    assert s['observed_precision'] == 7 / 8


def test_noise_detection_marks_cleaner_labels(device):
    """Corrupted labels have larger losses: the labels marked clean are
    much cleaner than the observed set, measured against the clean
    labels. The GMMs and the categories run on the losses' device."""
    rng = np.random.default_rng(0)
    num, num_classes = 3000, 4
    clean = (rng.random((num, num_classes)) < 0.3).astype(np.int8)
    flip = rng.random((num, num_classes)) < 0.3
    observed = np.where(flip, 1 - clean, clean).astype(np.int8)
    losses = np.where(flip, rng.normal(2.0, 0.4, flip.shape),
                      rng.normal(0.3, 0.15, flip.shape)).clip(0.01)
    hook = LabelRefinementHook(warmup_epochs=0)
    managed = hook.manage(
        torch.tensor(losses, dtype=torch.float32, device=device),
        torch.full((num, num_classes), 0.5, device=device),
        torch.tensor(observed, device=device))
    assert all(v.device.type == device.type for v in managed.values())
    managed = {k: v.cpu() for k, v in managed.items()}
    s = summarize_categories(managed['category'], torch.tensor(observed),
                             managed['targets'], managed['weights'], clean)
    assert s['observed_precision'] == pytest.approx(0.7, abs=0.02)
    assert s['clean_precision'] > 0.97
    assert s['clean_recall'] > 0.9
    # the corrupted labels are mostly not marked clean
    marked = (managed['category'] == CLEAN).numpy()
    assert marked[flip].mean() < 0.05
    # their ambiguous weight (clean posterior) is small
    amb = (managed['category'] == AMBIGUOUS).numpy()
    assert managed['weights'].numpy()[amb & flip].mean() < 0.1


def test_view_augment():
    x = torch.randn(3, 2, 8, 8)
    same = tensor_view_augment(x, torch.Generator().manual_seed(0),
                               max_shift=0., min_scale=1., flip=False)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=1e-5)
    g = torch.Generator().manual_seed(0)
    v1, v2 = tensor_view_augment(x, g), tensor_view_augment(x, g)
    assert v1.shape == x.shape and not torch.allclose(v1, v2)


# ----------------------------------------------------------------------
# the hook's checks
# ----------------------------------------------------------------------
def labels8():
    return np.array([[1, 0], [0, 1]] * 4, np.int8)


def test_registered():
    assert HOOKS.get('BalanceMixHook') is BalanceMixHook
    assert MODELS.get('BalanceMixDataPreprocessor') is not None


def test_missing_sampler_error():
    labels = labels8()
    hook = BalanceMixHook()
    runner = fake_runner(object(), 8, [LabelStoreHook(), hook], labels)
    with pytest.raises(TypeError, match='BalanceMixSampler'):
        hook.before_train(runner)


def test_batch_size_must_be_twice_the_half():
    labels = labels8()
    sampler = BalanceMixSampler(FakeTriStateDataset(labels), 2, seed=0)
    hook = BalanceMixHook()
    runner = fake_runner(sampler, 2, [LabelStoreHook(), hook], labels)
    with pytest.raises(ValueError,
                       match='batch_size=2 and batch_size_per_half=2'):
        hook.before_train(runner)


def test_missing_label_store_error():
    labels = labels8()
    sampler = BalanceMixSampler(FakeTriStateDataset(labels), 2, seed=0)
    hook = LabelRefinementHook()
    runner = fake_runner(sampler, 4, [hook], labels)
    with pytest.raises(RuntimeError, match='LabelStoreHook'):
        hook.before_train(runner)
    # without label management the store is not needed
    plain = BalanceMixHook()
    runner = fake_runner(
        BalanceMixSampler(FakeTriStateDataset(labels), 2, use_minority=False,
                          seed=0), 4, [plain], labels)
    plain.before_train(runner)


def test_store_injects_the_refined_labels_the_hook_declares():
    labels = labels8()
    sampler = BalanceMixSampler(FakeTriStateDataset(labels), 2, seed=0)
    hook = LabelRefinementHook()
    store_hook = LabelStoreHook()  # no fields / inject in the config
    runner = fake_runner(sampler, 4, [store_hook, hook], labels)
    store_hook.before_train(runner)
    hook.before_train(runner)
    store = store_hook.store
    assert 'targets' in store and 'weights' in store
    store.set_all('targets', torch.full(labels.shape, 0.25))
    store.set_all('weights', torch.full(labels.shape, 0.5))
    batch = make_batch(2, num_classes=2)
    for i, sample in enumerate(batch['data_samples']):
        sample.set_metainfo(dict(sample_idx=i))
    store_hook.before_train_iter(runner, 0, batch)
    for sample in batch['data_samples']:
        assert sample.gt_score.tolist() == [0.25, 0.25]
        assert sample.label_weight.tolist() == [0.5, 0.5]


def test_warmup_updates_minority_sampler_from_training_predictions(device):
    labels = labels8()
    sampler = BalanceMixSampler(FakeTriStateDataset(labels), 2, seed=0)

    class Head:
        queue = []

        def enable_train_predictions(self, c):
            pass

        def disable_train_predictions(self, c):
            pass

        def pop_train_predictions(self, c):
            out, Head.queue = Head.queue, []
            return out

    hook = BalanceMixHook()
    store_hook = LabelStoreHook(
        fields=['targets', 'weights'],
        inject=dict(targets='gt_score', weights='label_weight'))
    runner = fake_runner(sampler, 4, [store_hook, hook], labels)
    runner.model.head = Head()
    runner.epoch = 0
    hook.before_train(runner)
    hook.before_train_epoch(runner)
    # class 0 predicted confidently, class 1 badly
    logits = torch.tensor([[4., -4.], [-4., -4.]], device=device)
    Head.queue = [dict(logits=logits, sample_idx=torch.tensor([0, 1]))]
    hook.after_train_iter(runner, 0)
    assert hook._sums.device.type == device.type  # summed where the logits
    hook.after_train_epoch(runner)
    m = sampler.minority
    assert m.presence[0] > 0.95 and m.presence[1] < 0.05
    probs = m.sampling_probabilities()
    # images positive for class 1 are over-sampled
    assert probs[1] > probs[0]
    state = hook.state_dict()
    assert state['sampler']['minority']['presence'] is not None


# ----------------------------------------------------------------------
# the views of Eq. (9) made in the refinement pass
# ----------------------------------------------------------------------
def test_view_pipeline_loads_once_and_packs_three_images():
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import TRANSFORMS

    init_default_scope('mmpretrain')  # as the runner does
    pipeline = with_views(
        [dict(type='PackMultiLabelInputs')], 2,
        [dict(type='RandAugment', policies='simple_increasing',
              num_policies=2, magnitude_level=9, hparams=dict(pad_val=0))],
        'test')
    assert [t['type'] for t in pipeline] == ['MultiView',
                                             'PackMultiLabelInputs']
    transforms = [TRANSFORMS.build(t) for t in pipeline]
    img = np.zeros((16, 16, 3), np.uint8)
    img[4:12, 6:10] = 255
    results = dict(img=img, gt_tristate=np.array([1, 0], np.int8),
                   sample_idx=0)
    for t in transforms:
        results = t(results)
    plain, *views = results['inputs']
    assert len(views) == 2
    assert torch.equal(plain, torch.from_numpy(img).permute(2, 0, 1))
    with pytest.raises(ValueError, match='pass_pipeline'):
        LabelRefinementHook(view_transforms=[dict(type='RandAugment')])


@pytest.mark.parametrize('collate', ['pseudo', 'default'])
def test_split_views_of_both_collates(collate):
    pre = MODELS.build(dict(type='BalanceMixDataPreprocessor',
                            num_classes=4))
    model = SimpleNamespace(data_preprocessor=pre)
    batch = make_batch(3)
    views = [[x + 1 for x in batch['inputs']],
             [x + 2 for x in batch['inputs']]]
    per_view = [batch['inputs']] + views
    if collate == 'default':
        per_view = [torch.stack(v) for v in per_view]
    data = dict(inputs=per_view, data_samples=batch['data_samples'])
    inputs, samples = split_views(data, 2, 'test')
    assert samples is batch['data_samples']
    # one batch: the plain images, then each view's, preprocessed at once
    images = model.data_preprocessor(dict(inputs=inputs, data_samples=None),
                                     False)['inputs']
    plain, v1, v2 = images[:3], images[3:6], images[6:]
    assert torch.equal(v1 - plain, torch.ones_like(v1))
    assert torch.equal(v2 - plain, 2 * torch.ones_like(v2))
    # a batch of three plain images is not mistaken for three views
    plain_only, _ = split_views(make_batch(3), 2, 'test')
    assert len(plain_only) == 3 and plain_only[0].shape == (3, 4, 4)
