"""Mixed precision: every loss computes in float32 whatever its input dtype,
every method's training step is finite and close to float32 under autocast
(bfloat16 on the CPU, float16 on a GPU), the training-set pass under
autocast, ``AutocastOptimWrapper`` and ``tools/train.py --amp``: every
method trains a few iterations with its hooks (CPU: bfloat16 autocast; GPU:
MMEngine's AmpOptimWrapper, float16 with a loss scaler)."""
import copy
import glob
import inspect
import math
import os.path as osp

import numpy as np
import pytest
import torch
from devices import amp_dtype
from mmengine.config import Config
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmpretrain.registry import MODELS, TRANSFORMS

import mlimb_mm  # noqa: F401
from mlimb_mm.engine import AutocastOptimWrapper, amp_optim_wrapper_cfg
from mlimb_mm.engine.hooks import (LabelRefinementHook, MovingGradientHook,
                                   PLMHook, PseudoLabelHook,
                                   ReflectiveLabelCorrectionHook)
from mlimb_mm.engine.hooks.loss_epoch_hook import set_epoch_of_modules
from mlimb_mm.models.losses import (AssumeNegativeLoss,
                                    DistributionBalancedLoss,
                                    DynamicPartialLoss,
                                    MultiFocalModifierLoss,
                                    MultiLabelAsymmetricLoss,
                                    MultiLabelBCELoss,
                                    ReflectiveLabelCorrectionLoss)
from script_loader import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
COUNTS = [300, 120, 40, 9, 2]
NUM_SAMPLES = 400

#: every method, by its digits / COCO-shaped-digits config
METHODS = {
    'bce': 'configs/baseline/resnet18_digits_lt_bce.py',
    'db_focal': 'configs/db_loss/resnet18_digits_lt_db_focal.py',
    'plm': 'configs/plm/resnet18_digits_lt_plm_bce.py',
    'balancemix': 'configs/balancemix/resnet18_digits_lt_noisy_balancemix.py',
    'pseudo_labels':
    'configs/partial_labels/resnet18_cocolike_pal60_pseudo.py',
    'comic_separate': 'configs/comic/resnet18_cocolike_plt_comic.py',
    'comic_shared': 'configs/comic/resnet18_cocolike_plt_comic_shared.py',
}


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a CPU shared with other jobs two OpenMP
    threads wait for each other (iterations ~30x slower, measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------
# the losses: float32 whatever the input dtype
# ----------------------------------------------------------------------
def rlc():
    loss = ReflectiveLabelCorrectionLoss(tau=0.6)
    loss.loss.set_class_statistics(COUNTS, NUM_SAMPLES)
    return loss


LOSSES = {
    'bce': lambda: MultiLabelBCELoss(),
    'db': lambda: DistributionBalancedLoss(
        preset='DB', class_counts=COUNTS, num_samples=NUM_SAMPLES),
    'db_focal': lambda: DistributionBalancedLoss(
        class_counts=COUNTS, num_samples=NUM_SAMPLES),
    'rw_inv': lambda: DistributionBalancedLoss(
        preset='BCE', reweight_func='inv', class_counts=COUNTS,
        num_samples=NUM_SAMPLES),
    'dynamic_partial': lambda: DynamicPartialLoss(q=0.5, seed=0),
    'assume_negative': lambda: AssumeNegativeLoss(),
    'asl': lambda: MultiLabelAsymmetricLoss(),
    'mfm': lambda: MultiFocalModifierLoss(class_counts=COUNTS),
    'rlc': rlc,
}


def loss_inputs(device, scale=3., seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(6, 5, generator=gen) * scale
    tristate = torch.randint(-1, 2, (6, 5), generator=gen).to(torch.int8)
    target = torch.where(tristate == -1, torch.rand(6, 5, generator=gen),
                         (tristate == 1).float())
    weight = torch.rand(6, 5, generator=gen) + 0.5
    return logits.to(device), target.to(device), tristate.to(device), \
        weight.to(device)


def call(loss, logits, target, tristate, weight):
    if hasattr(loss, 'set_epoch'):
        loss.set_epoch(2, 10)  # also restarts the picks' steps
    kwargs = dict(tristate=tristate) if 'tristate' in inspect.signature(
        loss.forward).parameters else {}
    return loss(logits, target, weight=weight, avg_factor=logits.size(0),
                **kwargs)


@pytest.mark.parametrize('name', list(LOSSES))
def test_loss_is_float32_for_low_precision_logits(name, device):
    """float16 / bfloat16 logits (as a mixed-precision head gives them):
    the loss and its gradient are finite, the loss is float32 and equals
    the float32 loss of the same (rounded) logits: its logs and
    exponentials are computed in float32."""
    dtype = amp_dtype(device)
    logits, target, tristate, weight = loss_inputs(device)
    low = logits.to(dtype).requires_grad_()
    loss = LOSSES[name]().to(device).train()
    value = call(loss, low, target, tristate, weight)
    reference = call(LOSSES[name]().to(device).train(),
                     low.detach().float(), target, tristate, weight)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert value.item() == pytest.approx(reference.item(), rel=1e-6)
    value.backward()
    assert low.grad.dtype == dtype and torch.isfinite(low.grad).all()
    assert low.grad.abs().sum() > 0


@pytest.mark.parametrize('name', list(LOSSES))
def test_loss_under_autocast_equals_float32(name, device):
    """Inside an autocast region the loss is still computed in float32 (the
    value of the float32 loss); at logits near the low-precision range's
    end the loss and its gradient stay finite."""
    dtype = amp_dtype(device)
    logits, target, tristate, weight = loss_inputs(device, seed=1)
    reference = call(LOSSES[name]().to(device).train(), logits, target,
                     tristate, weight)
    with torch.autocast(device.type, dtype=dtype):
        value = call(LOSSES[name]().to(device).train(), logits, target,
                     tristate, weight)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(reference.item(), rel=1e-5)
    big = float(torch.finfo(torch.float16).max) / 2  # ~3e4: sigmoid 0 / 1
    extreme = torch.tensor([[big, -big, 40., -40., 0.]] * 6,
                           device=device).to(dtype).requires_grad_()
    with torch.autocast(device.type, dtype=dtype):
        value = call(LOSSES[name]().to(device).train(), extreme, target,
                     tristate, weight)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(extreme.grad).all()


# ----------------------------------------------------------------------
# each method's training step under autocast
# ----------------------------------------------------------------------
def method_model(name, device):
    cfg = Config.fromfile(osp.join(REPO, METHODS[name]))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pop('init_cfg', None)  # no (embedded) weights
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    num_classes = model_cfg.head.num_classes
    counts = np.maximum(1, (200 * np.linspace(1, 0, num_classes)**3))
    for module in model.modules():  # what ClassStatisticsHook does
        if hasattr(module, 'set_class_statistics'):
            module.set_class_statistics(counts.astype(np.int64), 400)
    size = 40 if num_classes == 10 else 48
    return model.to(device), num_classes, size


def method_batch(name, model, num_classes, size, seed=0):
    """A packed batch as the method's hooks leave it: unknown labels, PLM
    masks in ``label_weight``, pseudo labels in ``gt_score``; 2B samples
    for BalanceMix, one block per stream for COMIC."""
    rng = np.random.default_rng(seed)
    num = 4 * getattr(model, 'num_streams', 1)
    if name == 'balancemix':
        num *= 2
    pack = TRANSFORMS.build(dict(type='PackMultiLabelInputs'))
    samples = []
    for i in range(num):
        tri = (rng.random(num_classes) < 3 / num_classes).astype(np.int8)
        tri[rng.random(num_classes) < 0.3] = -1
        sample = pack(dict(
            img=rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
            gt_tristate=tri, sample_idx=i))['data_samples']
        if name == 'plm':
            sample.set_field(torch.as_tensor(
                rng.random(num_classes) < 0.7).float(), 'label_weight')
        if name == 'pseudo_labels':
            sample.set_gt_score(torch.as_tensor(
                np.where(tri == -1, rng.random(num_classes), tri == 1),
                dtype=torch.float32))
        samples.append(sample)
    return dict(inputs=[torch.as_tensor(
        rng.integers(0, 255, (3, size, size), dtype=np.uint8))
        for _ in samples], data_samples=samples)


def training_losses(model, batch, autocast=None):
    """The method's losses and gradients of one training step (the data
    preprocessor inside the autocast region, as MMEngine's optim_context),
    from a fixed random state (mixing draws, picks, dropout)."""
    model.train()
    set_epoch_of_modules(model, 0, 10, 0)
    mixer = getattr(model.data_preprocessor, 'mixer', None)
    if mixer is not None:
        mixer.reseed(0)
    torch.manual_seed(0)
    device = next(model.parameters()).device
    with torch.autocast(device.type, dtype=autocast or torch.float32,
                        enabled=autocast is not None):
        data = model.data_preprocessor(copy.deepcopy(batch), True)
        losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()
             if p.grad is not None}
    return losses, total, grads


@pytest.mark.parametrize('method', list(METHODS))
def test_training_step_under_autocast_is_close_to_float32(method, device):
    """BCE, DB-Focal, PLM (masks), BalanceMix (its preprocessor), the
    partial-label loss on pseudo labels and COMIC's three branches (shared
    and separate backbones, with their corrector and MFM losses): under
    autocast every loss is finite and float32 (its logs and exponentials
    in float32), the low-precision forward only perturbs it, and every
    gradient is finite."""
    dtype = amp_dtype(device)
    model, num_classes, size = method_model(method, device)
    batch = method_batch(method, model, num_classes, size)
    twin = method_model(method, device)[0]  # the same initial weights
    _, ref_total, _ = training_losses(twin, batch)
    losses, total, grads = training_losses(model, batch, dtype)
    for key, value in losses.items():
        if key.startswith('loss'):
            assert value.dtype == torch.float32, key
            assert torch.isfinite(value), key
    # the backbone ran in low precision; the losses are close anyway
    assert total.item() == pytest.approx(ref_total.item(), rel=0.05)
    assert grads and all(torch.isfinite(g).all() for g in grads.values())
    assert any(g.abs().sum() > 0 for g in grads.values())


def test_training_set_pass_under_autocast(device):
    """The refinement pass of a run under autocast: float32 results, close
    to the float32 pass (its per-label losses feed the GMMs)."""
    from types import SimpleNamespace

    from mlimb_mm.engine import TrainingSetPass
    model, num_classes, size = method_model('balancemix', device)
    batch = method_batch('bce', model, num_classes, size)
    num = len(batch['data_samples'])
    targets = torch.stack([s.gt_score for s in batch['data_samples']])
    outs = []
    for autocast in (False, True):
        pass_ = TrainingSetPass(num_views=2)
        pass_._loader = [batch]
        with torch.autocast(device.type, dtype=amp_dtype(device),
                            enabled=autocast):
            outs.append(pass_.run(SimpleNamespace(model=model), 0, num,
                                  targets=targets))
    for key in ('probs', 'view_probs', 'losses'):
        assert outs[1][key].dtype == torch.float32
        assert torch.isfinite(outs[1][key]).all()
        torch.testing.assert_close(outs[1][key], outs[0][key], atol=0.05,
                                   rtol=0.05)


# ----------------------------------------------------------------------
# AutocastOptimWrapper and the --amp switch
# ----------------------------------------------------------------------
def test_autocast_optim_wrapper(device):
    model = torch.nn.Linear(4, 3).to(device)
    wrapper = build_optim_wrapper(model, dict(
        type='AutocastOptimWrapper',
        optimizer=dict(type='SGD', lr=0.1), clip_grad=dict(max_norm=1.)))
    assert isinstance(wrapper, AutocastOptimWrapper)
    with wrapper.optim_context(model):
        out = model(torch.randn(2, 4, device=device))
    assert out.dtype == torch.bfloat16
    before = model.weight.detach().clone()
    wrapper.update_params(out.float().square().sum())
    assert not torch.equal(before, model.weight)
    assert model.weight.dtype == torch.float32
    with pytest.raises(ValueError, match='loss scaler'):
        AutocastOptimWrapper(dtype='float16', optimizer=wrapper.optimizer)


def test_amp_cfg_per_device_for_every_schedule():
    """``--amp`` keeps every config's optimizer, clipping and schedule: a
    GPU gets AmpOptimWrapper (float16, dynamic loss scale), the CPU
    AutocastOptimWrapper (bfloat16, no scaler); every config file that
    sets an optim_wrapper builds it."""
    paths = [p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                                  recursive=True)
             if 'optim_wrapper' in open(p).read()]
    assert len(paths) >= 5
    model = torch.nn.Linear(2, 2)
    for path in paths:
        cfg = Config.fromfile(path)
        if 'optim_wrapper' not in cfg:
            continue
        gpu = amp_optim_wrapper_cfg(cfg.optim_wrapper, device='cuda')
        assert gpu['type'] == 'AmpOptimWrapper'
        assert gpu['loss_scale'] == 'dynamic'
        cpu = amp_optim_wrapper_cfg(cfg.optim_wrapper, device='cpu')
        assert cpu['type'] == 'AutocastOptimWrapper', path
        assert cpu['dtype'] == 'bfloat16' and 'loss_scale' not in cpu
        assert cpu['optimizer'] == cfg.optim_wrapper['optimizer']
        wrapper = build_optim_wrapper(model, copy.deepcopy(cpu))
        assert isinstance(wrapper, AutocastOptimWrapper), path
    plain = amp_optim_wrapper_cfg(dict(type='OptimWrapper', loss_scale=512.,
                                       optimizer=dict(type='SGD', lr=1)),
                                  device='cuda')
    assert plain['loss_scale'] == 512.
    with pytest.raises(ValueError, match='OptimWrapper'):
        amp_optim_wrapper_cfg(dict(type='ApexOptimWrapper'), device='cpu')
    assert isinstance(build_optim_wrapper(model, dict(
        optimizer=dict(type='SGD', lr=1))), OptimWrapper)


def load_train_tool():
    return load_script('tools/train.py', 'mlimb_mm_train_tool')


def small_dataset(node, num):
    """The method's training dataset chain on ``num`` images: the label
    wrappers kept (noise, missing labels), the long-tailed subset of a
    large pool dropped, the innermost dataset cut to ``num`` images."""
    node = dict(node)
    if node['type'] == 'LongTailSubsetDataset':
        return small_dataset(node['dataset'], num)
    if 'dataset' in node:
        node['dataset'] = small_dataset(node['dataset'], num)
        return node
    if node['type'] == 'CocoLikeDigits':
        node['num_train_images'] = 1500
    node['indices'] = num
    return node


def small_config(method, directory, num=32, batch=16):
    cfg = Config.fromfile(osp.join(REPO, METHODS[method]))
    loader = dict(batch_size=batch, num_workers=0, persistent_workers=False,
                  dataset=dict(_delete_=True, **small_dataset(
                      cfg.train_dataloader.dataset.to_dict(), num)))
    if cfg.train_dataloader.sampler.type == 'BalanceMixSampler':
        loader['sampler'] = dict(batch_size_per_half=batch // 2)
    hooks = [h.to_dict() if hasattr(h, 'to_dict') else dict(h)
             for h in cfg.get('custom_hooks', [])]
    for hook in hooks:
        if hook['type'] == 'LabelRefinementHook':  # refine after epoch 1
            hook.update(warmup_epochs=0, pass_num_workers=0)
    text = (f'_base_ = [{osp.join(REPO, METHODS[method])!r}]\n'
            'model = dict(backbone=dict(init_cfg=None))\n'
            f'train_dataloader = {loader!r}\n'
            f'custom_hooks = {hooks!r}\n'
            'train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)\n'
            'param_scheduler = []\n'
            'default_hooks = dict(logger=dict(interval=1), checkpoint=None)\n'
            'randomness = dict(seed=0)\n')
    path = osp.join(directory, f'amp_{method}.py')
    with open(path, 'w') as f:
        f.write(text)
    return path


@pytest.mark.parametrize('method', list(METHODS))
def test_amp_switch_trains_every_method(method, device, tmp_path,
                                        monkeypatch):
    """``tools/train.py CONFIG --amp`` trains each method a few iterations
    with all its hooks (label store, PLM, BalanceMix with its refinement
    pass, pseudo labels, COMIC's corrector and moving vectors): on the CPU
    under bfloat16 autocast (AutocastOptimWrapper), on a GPU with MMEngine's
    AmpOptimWrapper (float16, loss scaler). Finite losses, parameters and
    method state; the backbone ran in low precision."""
    if device.type == 'cpu':  # a GPU machine: the CPU run stays on the CPU
        import mmengine.device.utils
        monkeypatch.setattr(mmengine.device.utils, 'DEVICE', 'cpu')
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    config = small_config(method, str(tmp_path))
    tool = load_train_tool()
    dtypes = set()

    def record(module, args, output):
        if module.training:
            dtypes.add(output.dtype)

    original = tool.Runner.from_cfg

    def from_cfg(cfg):
        runner = original(cfg)
        conv = next(m for m in runner.model.modules()
                    if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(record)
        return runner

    monkeypatch.setattr(tool.Runner, 'from_cfg', from_cfg)
    runner = tool.main([config, '--amp', '--no-validate', '--work-dir',
                        str(tmp_path / f'work_{device.type}')])
    expected = 'AmpOptimWrapper' if device.type == 'cuda' else \
        'AutocastOptimWrapper'
    assert type(runner.optim_wrapper).__name__ == expected
    assert dtypes == {amp_dtype(device)}
    loss = runner.message_hub.get_scalar('train/loss')
    assert len(loss.data[0]) == runner.iter >= 2
    assert all(math.isfinite(v) for v in loss.data[0])
    params = list(runner.model.parameters())
    assert params[0].device.type == device.type
    assert all(torch.isfinite(p).all() for p in params)
    hooks = {type(h): h for h in runner.hooks}
    if method == 'plm':
        assert torch.isfinite(hooks[PLMHook].ratio).all()
        assert len(hooks[PLMHook].history) == 2
    if method == 'balancemix':
        refinement = hooks[LabelRefinementHook]
        assert refinement.history and refinement.history[0]['epoch'] == 1
        assert runner.train_dataloader.sampler.minority.presence is not None
    if method == 'pseudo_labels':
        store = hooks[PseudoLabelHook].history
        assert store and store[0]['mean'] is not None
    if method.startswith('comic'):
        vectors = hooks[MovingGradientHook]._head.moving_vectors
        assert hooks[MovingGradientHook].steps == runner.iter
        assert vectors.device.type == device.type
        assert torch.isfinite(vectors).all() and vectors.abs().sum() > 0
        assert hooks[ReflectiveLabelCorrectionHook].history
