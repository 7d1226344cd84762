"""COMIC's Head-Tail Balancer: Eq. (8)-(11) against hand computations, and
a full train / eval step of the three-branch model for each backbone
option."""
import copy

import numpy as np
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS, TRANSFORMS
from sklearn.metrics import average_precision_score

import mlimb_mm  # noqa: F401
from mlimb_mm.models.classifiers import COMICClassifier
from mlimb_mm.models.heads import COMICHead
from mlimb_mm.models.utils.comic import (additive_attention_weights,
                                         batch_mean_ap, cosine_logits,
                                         distillation_kappas,
                                         distillation_probs,
                                         moving_vector_step)

K = 5
BACKBONE = dict(type='ResNet_CIFAR', depth=18, stem_channels=8,
                base_channels=8, num_stages=4, strides=(2, 2, 2, 2),
                out_indices=(3, ), style='pytorch')  # 64-d features


# ----------------------------------------------------------------------
# Eq. (8)-(11) by hand
# ----------------------------------------------------------------------
def cosine_by_hand(x, w, heads, scale, offset, e=None, beta=0.):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    d = x.shape[1] // heads
    out = np.zeros((x.shape[0], w.shape[0]))
    for b in range(x.shape[0]):
        for k in range(w.shape[0]):
            for h in range(heads):
                xs = x[b, h * d:(h + 1) * d]
                ws = w[k, h * d:(h + 1) * d]
                xh = xs / np.linalg.norm(xs)
                wh = ws / (np.linalg.norm(ws) + offset)
                if e is not None:
                    es = np.asarray(e, np.float64)[h * d:(h + 1) * d]
                    eh = es / np.linalg.norm(es)
                    xh = xh + beta * np.dot(xh, eh) * eh
                out[b, k] += scale / heads * np.dot(xh, wh)
    return out


def test_cosine_classifier_is_eq9_by_hand(device):
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(3, 8)), rng.normal(size=(4, 8))
    got = cosine_logits(torch.tensor(x, device=device),
                        torch.tensor(w, device=device), num_heads=2,
                        scale=16., norm_offset=1 / 32)
    assert got.device.type == device.type
    got = got.cpu()
    np.testing.assert_allclose(got.numpy(),
                               cosine_by_hand(x, w, 2, 16., 1 / 32),
                               rtol=1e-5, atol=1e-5)
    assert got.dtype == torch.float32
    zero = cosine_logits(torch.zeros(2, 8), torch.zeros(4, 8), 2)
    assert torch.isfinite(zero).all()


def test_moving_vector_removed_by_head_added_by_tail_eq10():
    rng = np.random.default_rng(1)
    x, w, e = rng.normal(size=(3, 8)), rng.normal(size=(4, 8)), \
        rng.normal(size=8)
    for beta in (-1., 2.):
        got = cosine_logits(torch.tensor(x), torch.tensor(w), 2, 16., 1 / 32,
                            torch.tensor(e), beta)
        np.testing.assert_allclose(
            got.numpy(), cosine_by_hand(x, w, 2, 16., 1 / 32, e, beta),
            rtol=1e-5, atol=1e-5)
    # head (beta = -1): a class weight along e_t gets no logit at all
    w_along = torch.tensor(np.tile(e, (1, 1)))
    head = cosine_logits(torch.tensor(x), w_along, 2, 16., 1 / 32,
                         torch.tensor(e), -1.)
    assert torch.allclose(head, torch.zeros_like(head), atol=1e-5)
    # a zero moving vector changes nothing
    plain = cosine_logits(torch.tensor(x), torch.tensor(w), 2)
    same = cosine_logits(torch.tensor(x), torch.tensor(w), 2,
                         moving=torch.zeros(8), beta=-1.)
    assert torch.allclose(plain, same)


def test_additive_attention_is_eq8_by_hand():
    rng = np.random.default_rng(2)
    q, keys = rng.normal(size=(2, 4)), rng.normal(size=(2, 2, 4))
    wq, wk, wv = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), \
        rng.normal(size=(1, 3))
    got = additive_attention_weights(*(torch.tensor(a)
                                       for a in (q, keys, wq, wk, wv)))
    for b in range(2):
        scores = [float((wv @ np.tanh(wq @ q[b] + wk @ keys[b, m]))[0])
                  for m in range(2)]
        expected = np.exp(scores) / np.exp(scores).sum()
        np.testing.assert_allclose(got[b].numpy(), expected, rtol=1e-5)


def test_batch_mean_ap_matches_sklearn_and_kappas_eq11():
    rng = np.random.default_rng(3)
    scores = rng.random((12, 4))
    targets = (rng.random((12, 4)) < 0.4).astype(np.float32)
    targets[:, 3] = 0  # no positive: skipped
    expected = np.mean([average_precision_score(targets[:, k], scores[:, k])
                        for k in range(3)])
    got = batch_mean_ap(torch.tensor(scores), torch.tensor(targets))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    valid = np.ones_like(targets, dtype=bool)
    valid[:4, 0] = False
    exp0 = average_precision_score(targets[4:, 0], scores[4:, 0])
    got0 = batch_mean_ap(torch.tensor(scores[:, :1]),
                         torch.tensor(targets[:, :1]),
                         torch.tensor(valid[:, :1]))
    assert float(got0) == pytest.approx(exp0, rel=1e-5)
    assert distillation_kappas(0.6, 0.3, 2.) == pytest.approx(
        (0.36 / 0.45, 0.09 / 0.45))
    assert distillation_kappas(0., 0., 2.) == (0.5, 0.5)
    zh, zb = torch.randn(2, 3, requires_grad=True), torch.randn(2, 3)
    p = distillation_probs(zh, zb, 'softmax')
    assert torch.allclose(p, torch.softmax(zh, -1) * torch.softmax(zb, -1))
    assert not p.requires_grad  # the teacher is detached
    assert torch.allclose(moving_vector_step(torch.ones(3), torch.ones(3),
                                             0.9), torch.full((3, ), 1.9))


# ----------------------------------------------------------------------
# the model
# ----------------------------------------------------------------------
def model_cfg(mode='separate', streams=None, **head):
    proj = None if mode == 'separate' else dict(in_channels=64,
                                               out_channels=32)
    head_cfg = dict(
        type='COMICHead', num_classes=K, in_channels=32 if proj else 64,
        loss=dict(type='ReflectiveLabelCorrectionLoss', tau=0.5,
                  loss=dict(type='MultiFocalModifierLoss')))
    head_cfg.update(head)
    return dict(type='COMICClassifier', backbone=BACKBONE,
                backbone_mode=mode, projection=proj, branch_streams=streams,
                head=head_cfg,
                data_preprocessor=dict(num_classes=K, to_onehot=True))


def build(cfg):
    model = MODELS.build(cfg)
    for module in model.modules():
        if hasattr(module, 'set_class_statistics'):
            module.set_class_statistics(np.array([40, 20, 8, 3, 1]), 50)
    return model


def make_batch(num, seed=0):
    rng = np.random.default_rng(seed)
    pack = TRANSFORMS.build(dict(type='PackMultiLabelInputs'))
    samples = []
    for i in range(num):
        tri = (rng.random(K) < 0.4).astype(np.int8)
        tri[rng.random(K) < 0.3] = -1
        samples.append(pack(dict(
            img=rng.integers(0, 255, (24, 24, 3), dtype=np.uint8),
            gt_tristate=tri, sample_idx=100 + i)))
    return dict(inputs=[s['inputs'] for s in samples],
                data_samples=[s['data_samples'] for s in samples])


def params_of(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


@pytest.mark.parametrize('mode,streams', [
    ('separate', None),
    ('shared', None),
    ('frozen', dict(balanced=0, head=1, tail=2)),
])
def test_train_and_eval_step_for_each_backbone_option(mode, streams, device):
    torch.manual_seed(0)
    model = build(model_cfg(mode, streams)).to(device)
    optim = OptimWrapper(torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=1e-2))
    before = params_of(model)
    bn_before = None
    if mode == 'frozen':
        bn_before = {n: b.clone() for n, b in model.backbone.named_buffers()}
    model.train()
    log = model.train_step(make_batch(4 * model.num_streams), optim)
    for key in ('loss', 'loss_balanced', 'loss_head', 'loss_tail',
                'loss_htb'):
        assert torch.isfinite(log[key]), key
    # the moving vectors' batch means and the correctors' state stay on
    # the model's device
    means = model.head.pop_feature_means()
    assert means.shape == (2, 32 if mode != 'separate' else 64)
    assert means.device.type == device.type
    for loss in model.head.losses.values():
        assert loss.prob_sum.device.type == device.type
    after = params_of(model)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    if mode == 'separate':
        for branch in ('balanced', 'head', 'tail'):
            assert any(n.startswith(f'backbones.{branch}.') for n in changed)
    elif mode == 'shared':
        assert any(n.startswith('backbone.') for n in changed)
    else:
        assert not any(n.startswith('backbone.') for n in changed)
        assert not model.backbone.training  # BN statistics frozen too
        for name, buf in model.backbone.named_buffers():
            assert torch.equal(buf, bn_before[name]), name
    if mode != 'separate':
        for branch in ('balanced', 'head', 'tail'):
            assert f'projections.{branch}.weight' in changed
    for branch in ('balanced', 'head', 'tail'):
        assert f'head.weights.{branch}' in changed
    assert 'head.attn_query.weight' in changed
    model.eval()
    preds = model.val_step(make_batch(3, seed=1))
    assert len(preds) == 3 and preds[0].pred_score.shape == (K, )
    assert torch.isfinite(torch.stack([p.pred_score for p in preds])).all()


def test_each_branch_trains_on_its_stream_block():
    model = build(model_cfg('frozen', dict(balanced=0, head=1, tail=2)))
    losses = model.head.losses
    for loss in losses.values():
        loss.enable_correction_records()
    model.train()
    data = model.data_preprocessor(make_batch(9), True)
    model(**data, mode='loss')
    for block, branch in enumerate(('balanced', 'head', 'tail')):
        (record, ) = losses[branch].pop_corrections()
        assert record['sample_idx'].tolist() == list(
            range(100 + 3 * block, 103 + 3 * block))
    with pytest.raises(ValueError, match='blocks'):
        model(**model.data_preprocessor(make_batch(8), True), mode='loss')


def test_comic_sampler_blocks_train_the_branches_on_the_device(device):
    """COMICSampler's steps (instance, reversed, balanced blocks of B) feed
    the three branches of the model on the device: each branch's corrector
    sees exactly its stream's block."""
    from fake_datasets import FakeTriStateDataset
    from mlimb_mm.datasets.samplers import COMICSampler
    rng = np.random.default_rng(0)
    labels = (rng.random((30, K)) < 0.3).astype(np.int8)
    labels[np.arange(30), np.arange(30) % K] = 1  # every class has images
    labels[rng.random((30, K)) < 0.2] = -1
    sampler = COMICSampler(FakeTriStateDataset(labels),
                           batch_size_per_stream=3, seed=0)
    step = list(iter(sampler))[:sampler.expected_batch_size]
    pack = TRANSFORMS.build(dict(type='PackMultiLabelInputs'))
    samples = [pack(dict(img=rng.integers(0, 255, (24, 24, 3), np.uint8),
                         gt_tristate=labels[i], sample_idx=i))
               for i in step]
    model = build(model_cfg('frozen', dict(balanced=0, head=1,
                                           tail=2))).to(device)
    losses = model.head.losses
    for loss in losses.values():
        loss.enable_correction_records()
    model.train()
    data = model.data_preprocessor(
        dict(inputs=[s['inputs'] for s in samples],
             data_samples=[s['data_samples'] for s in samples]), True)
    out = model(**data, mode='loss')
    assert all(torch.isfinite(v).all() and v.device.type == device.type
               for v in out.values())
    for block, branch in enumerate(('balanced', 'head', 'tail')):
        record, = losses[branch].pop_corrections()
        assert record['sample_idx'].tolist() == step[3 * block:3 * block + 3]


def test_inference_branch_and_moving_vectors():
    model = build(model_cfg('separate'))
    model.eval()
    model.head.moving_vectors.normal_()
    data = model.data_preprocessor(make_batch(3), False)
    feats = model.extract_feat(data['inputs'])
    out = {}
    for branch in ('balanced', 'head', 'tail'):
        model.head.predict_branch = branch
        out[branch] = model(data['inputs'], mode='tensor')
    logits = model.head.all_logits(feats)
    for branch in out:
        assert torch.allclose(out[branch], logits[branch])
    assert not torch.allclose(out['head'], out['tail'])
    # Eq. (10): the head removes (beta -1), the tail adds (+1) its e_t
    for row, (branch, beta) in enumerate((('head', -1.), ('tail', 1.))):
        expected = cosine_logits(feats[branch], model.head.weights[branch],
                                 2, 16., 1 / 32,
                                 model.head.moving_vectors[row], beta)
        assert torch.allclose(out[branch], expected)
    # head/tail move along e_t: zero vectors give the plain classifier
    model.head.moving_vectors.zero_()
    plain = cosine_logits(feats['head'], model.head.weights['head'], 2)
    assert torch.allclose(model.head.branch_logits('head', feats['head']),
                          plain)
    # the vectors are saved with the model (test-time head / tail rows)
    assert 'head.moving_vectors' in model.state_dict()


def test_options_are_checked():
    with pytest.raises(ValueError, match='projection'):
        MODELS.build(model_cfg('shared') | dict(projection=None))
    with pytest.raises(ValueError, match='backbone_mode'):
        MODELS.build(model_cfg('twin'))
    with pytest.raises(ValueError, match='unused'):
        MODELS.build(model_cfg('separate', dict(balanced=0, head=2, tail=2)))
    with pytest.raises(ValueError, match='num_heads'):
        COMICHead(num_classes=3, in_channels=9, num_heads=2)
    with pytest.raises(TypeError, match='MultiFocalModifierLoss'):
        COMICHead(num_classes=3, in_channels=8,
                  loss=dict(type='MultiLabelBCELoss'))
    head = COMICHead(num_classes=3, in_channels=8, distill=None,
                     attention=None, loss=dict(type='MultiLabelBCELoss'))
    assert not head.with_attention and head.distill is None
    cfg = copy.deepcopy(model_cfg('separate'))
    cfg['data_preprocessor']['batch_augments'] = dict(augments=[])
    with pytest.raises(ValueError, match='batch_augments'):
        MODELS.build(cfg)
    assert MODELS.get('COMICClassifier') is COMICClassifier


@pytest.mark.parametrize('mode', ['separate', 'shared', 'frozen'])
def test_every_branch_backbone_loads_the_pretrained_weights(tmp_path, mode):
    source = MODELS.build(BACKBONE)
    path = str(tmp_path / 'pretrained.pth')
    torch.save({'state_dict': {f'backbone.{k}': v
                               for k, v in source.state_dict().items()}},
               path)
    cfg = model_cfg(mode)
    cfg['backbone'] = dict(BACKBONE, init_cfg=dict(
        type='Pretrained', checkpoint=path, prefix='backbone.'))
    model = MODELS.build(cfg)
    model.init_weights()
    backbones = (model.backbones.values() if mode == 'separate' else
                 [model.backbone])
    for backbone in backbones:
        for name, value in source.state_dict().items():
            assert torch.equal(backbone.state_dict()[name], value), name


def test_unconsumed_feature_means_warn_about_the_hook(monkeypatch):
    from mlimb_mm.models.heads import comic_head
    messages = []
    monkeypatch.setattr(comic_head, 'print_log', lambda msg, *a, **k:
                        messages.append(msg))
    model = build(model_cfg('shared'))
    model.train()
    data = model.data_preprocessor(make_batch(4), True)
    model(**data, mode='loss')
    assert model.head.pop_feature_means().shape == (2, 32)
    model(**data, mode='loss')  # consumed: no warning
    assert not messages
    model(**data, mode='loss')  # the last step's means left unread
    assert len(messages) == 1 and 'MovingGradientHook' in messages[0]
