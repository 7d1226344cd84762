import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import HOOKS, MODELS

from mlimb_mm.engine.hooks import ClassStatisticsHook
from mlimb_mm.models.losses import DistributionBalancedLoss
from mlimb_mm.models.losses.distribution_balanced_loss import PRESETS

# 3 images x 4 classes, N = 10 training images
COUNTS = [6, 3, 1, 9]
N = 10
LABELS = [[1, 0, 0, 1], [0, 1, 1, 0], [1, 0, 0, 0]]
LOGITS = [[1.5, -0.5, 0.3, 2.0], [-1.0, 0.7, -0.2, -2.5],
          [0.4, 1.2, -3.0, 0.1]]
ALPHA, BETA, MU = 0.1, 10.0, 0.2
KAPPA, LAM = 0.05, 2.0
GAMMA, BALANCE = 2.0, 2.0


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def softplus(x):  # log(1 + e^x)
    return math.log1p(math.exp(x))


def rbce_weight(labels, k, counts=COUNTS, alpha=ALPHA, beta=BETA, mu=MU):
    """Eq. (2)-(4) for one image and class k."""
    p_class = 1.0 / counts[k]
    p_inst = sum(1.0 / counts[j] for j, y in enumerate(labels) if y == 1)
    r = p_class / p_inst
    return alpha + sigmoid(beta * (r - mu))


def db_by_hand(form, focal, reweight=True, logit_reg=True):
    """Eq. (10) (times the focal factor), element by element, mean over
    B*K."""
    total = 0.0
    for labels, logits in zip(LABELS, LOGITS):
        for k, (y, z) in enumerate(zip(labels, logits)):
            b = -math.log(N / COUNTS[k] - 1)  # Eq. (9)
            lam = LAM if logit_reg else 1.0
            if not logit_reg:
                shift = 0.0
            elif form == 'paper':
                nu = -KAPPA * b
                shift = -nu
            else:  # released: z + kappa*b/lambda
                shift = KAPPA * b / LAM
            zs = z + shift
            if y == 1:
                term = softplus(-zs)
                factor = (1 - sigmoid(zs))**GAMMA
            else:
                term = softplus(lam * zs) / lam
                factor = (1 - sigmoid(-lam * zs))**GAMMA
            if focal:
                term = BALANCE * factor * term
            w = rbce_weight(labels, k) if reweight else 1.0
            total += w * term
    return total / (len(LABELS) * len(COUNTS))


def released_reference(logits, labels, counts, num, focal=True):
    """The authors' ResampleLoss (rebalance + logit_reg + focal), restated
    with torch ops: shift all logits, scale negatives and their weights,
    BCE, focal on the scaled logits, mean over all elements."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    freq_inv = 1 / counts
    repeat = (labels * freq_inv).sum(1, keepdim=True)
    weight = torch.sigmoid(BETA * (freq_inv / repeat - MU)) + ALPHA
    logits = logits + (-torch.log(num / counts - 1)) * KAPPA / LAM
    logits = logits * (1 - labels) * LAM + logits * labels
    weight = weight / LAM * (1 - labels) + weight * labels
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction='none')
    if focal:
        pt = torch.exp(-bce)
        loss = BALANCE * (1 - pt)**GAMMA * weight * bce
    else:
        loss = weight * bce
    return loss.mean()


def make(preset='DB-Focal', counts=COUNTS, num=N, **kwargs):
    return DistributionBalancedLoss(
        preset=preset, class_counts=counts, num_samples=num, **kwargs)


def tensors(dtype=torch.float64):
    return (torch.tensor(LOGITS, dtype=dtype),
            torch.tensor(LABELS, dtype=dtype))


# ----------------------------------------------------------------------
# Eq. (10), both forms
# ----------------------------------------------------------------------
@pytest.mark.parametrize('form', ['released', 'paper'])
@pytest.mark.parametrize('preset,focal', [('DB', False), ('DB-Focal', True)])
def test_db_matches_hand_computation(form, preset, focal, device):
    logits, labels = tensors()
    loss = make(preset, logit_reg_form=form).to(device)(
        logits.to(device), labels.to(device))
    assert loss.device.type == device.type
    assert loss.item() == pytest.approx(db_by_hand(form, focal), rel=1e-9)


@pytest.mark.parametrize('focal', [False, True])
def test_released_form_matches_released_code(focal):
    logits, labels = tensors()
    loss = make('DB-Focal' if focal else 'DB')(logits, labels)
    expected = released_reference(logits, labels, COUNTS, N, focal=focal)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-9)


def test_paper_and_released_forms_differ_by_the_shift():
    logits, labels = tensors()
    released = make('DB')(logits, labels)
    paper = make('DB', logit_reg_form='paper')(logits, labels)
    assert abs(released.item() - paper.item()) > 1e-5
    torch.testing.assert_close(
        make('DB', logit_reg_form='paper').compute_logit_shift(),
        LAM * make('DB').compute_logit_shift())
    # without the prior shift (kappa = 0) the forms coincide
    kw = dict(logit_reg=dict(init_bias=0.0))
    assert make('DB', **kw)(logits, labels).item() == pytest.approx(
        make('DB', logit_reg_form='paper', **kw)(logits, labels).item(),
        rel=1e-12)


def test_other_rows_match_hand_computation():
    logits, labels = tensors()
    cases = {
        'NT-BCE': db_by_hand('released', False, reweight=False),
        'R-BCE': db_by_hand('released', False, logit_reg=False),
        'R-BCE-Focal': db_by_hand('released', True, logit_reg=False),
        'Focal': db_by_hand('released', True, False, False),
        'BCE': db_by_hand('released', False, False, False),
    }
    for preset, expected in cases.items():
        got = make(preset)(logits, labels).item()
        assert got == pytest.approx(expected, rel=1e-9), preset
    assert make('BCE')(logits, labels).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, labels).item(), rel=1e-9)


# ----------------------------------------------------------------------
# weights
# ----------------------------------------------------------------------
def test_rebalance_weight_by_hand():
    _, labels = tensors()
    w = make('R-BCE').compute_reweight(labels)
    for b in range(3):
        for k in range(4):
            assert w[b, k].item() == pytest.approx(
                rbce_weight(LABELS[b], k), rel=1e-12)
    # image 0 (positives: classes 0 and 3), class 1, spelled out
    r = (1 / 3) / (1 / 6 + 1 / 9)
    assert r == pytest.approx(1.2)
    assert w[0, 1].item() == pytest.approx(0.1 + 1 / (1 + math.exp(-10.0)))
    # same weight for positives and negatives: depends on the class only
    assert w[2, 0].item() == pytest.approx(ALPHA + sigmoid(BETA * (1 - MU)))


def test_rw_weight_by_hand():
    _, labels = tensors()
    raw = make('RW', weight_norm=None).compute_reweight(labels)
    normed = make('RW').compute_reweight(labels)  # preset: by_batch
    for k, n in enumerate(COUNTS):
        assert raw[:, k].tolist() == pytest.approx([math.sqrt(N / n)] * 3)
        # normalised to [0, 1]: sqrt(n_min / n_k)
        assert normed[:, k].tolist() == pytest.approx([math.sqrt(1 / n)] * 3)
    inv = make('RW', reweight_func='inv', weight_norm=None)
    assert inv.compute_reweight(labels)[0].tolist() == pytest.approx(
        [N / n for n in COUNTS])


def test_cb_weight_by_hand():
    _, labels = tensors()
    cb = [(1 - 0.9) / (1 - 0.9**n) for n in COUNTS]
    w = make('CB').compute_reweight(labels)  # average_w, beta 0.9
    expected_rows = [(cb[0] + cb[3]) / 2, (cb[1] + cb[2]) / 2, cb[0]]
    for b, e in enumerate(expected_rows):
        assert w[b].tolist() == pytest.approx([e] * 4, rel=1e-12)
    by_class = make(
        'CB', cb_param=dict(beta=0.99,
                            mode='by_class')).compute_reweight(labels)
    assert by_class[1].tolist() == pytest.approx(
        [(1 - 0.99) / (1 - 0.99**n) for n in COUNTS], rel=1e-12)
    avg_e = make(
        'CB', cb_param=dict(mode='average_e')).compute_reweight(labels)
    e0, e3 = ((1 - 0.9**n) / 0.1 for n in (COUNTS[0], COUNTS[3]))
    assert avg_e[0, 0].item() == pytest.approx(2 / (e0 + e3), rel=1e-12)
    assert make('CB').loss_weight == 10.0
    assert make('CB', loss_weight=1.0).loss_weight == 1.0
    # Cui et al.'s normalisation: the class weights sum to K.
    normalized = make('CB', cb_param=dict(
        beta=0.99, mode='by_class', normalize=True)).compute_reweight(labels)
    raw = [(1 - 0.99) / (1 - 0.99**n) for n in COUNTS]
    assert normalized[0].tolist() == pytest.approx(
        [c * len(COUNTS) / sum(raw) for c in raw], rel=1e-12)
    assert normalized[0].sum().item() == pytest.approx(len(COUNTS))


def test_preset_table_and_overrides():
    assert DistributionBalancedLoss(preset='BCE').reweight_func is None
    default = DistributionBalancedLoss()
    assert default.preset == 'DB-Focal'
    assert default.reweight_func == 'rebalance'
    assert default.logit_reg == dict(init_bias=0.05, neg_scale=2.0)
    assert default.focal == dict(gamma=2.0, balance_param=2.0)
    assert default.map_param == dict(alpha=0.1, beta=10.0, mu=0.2)
    assert default.logit_reg_form == 'released'
    voc = DistributionBalancedLoss(
        preset='DB', map_param=dict(mu=0.3), logit_reg=dict(neg_scale=5.0))
    assert voc.focal is None
    assert voc.map_param == dict(alpha=0.1, beta=10.0, mu=0.3)
    assert voc.logit_reg == dict(init_bias=0.05, neg_scale=5.0)
    assert DistributionBalancedLoss(
        preset='DB-Focal', focal=None).focal is None
    assert set(PRESETS) >= {
        'BCE', 'R-BCE', 'NT-BCE', 'DB', 'R-BCE-Focal', 'DB-Focal', 'RW', 'CB'
    }
    with pytest.raises(ValueError, match='preset'):
        DistributionBalancedLoss(preset='LDAM')
    with pytest.raises(KeyError, match='kappa'):
        DistributionBalancedLoss(logit_reg=dict(kappa=0.1))
    built = MODELS.build(dict(type='DistributionBalancedLoss', preset='DB'))
    assert isinstance(built, DistributionBalancedLoss)


# ----------------------------------------------------------------------
# degenerate inputs and statistics
# ----------------------------------------------------------------------
ALL_PRESETS = sorted(PRESETS)


@pytest.mark.parametrize('preset', ALL_PRESETS)
@pytest.mark.parametrize('form', ['released', 'paper'])
def test_finite_for_extreme_logits(preset, form):
    logits = torch.tensor(
        [[1e4, -1e4, 1e4, -1e4], [-1e4, 1e4, -1e4, 1e4], [1e4, 1e4, -1e4,
                                                          -1e4]],
        requires_grad=True)
    labels = torch.tensor(LABELS, dtype=torch.float32)
    loss = make(preset, logit_reg_form=form)(logits, labels)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize('preset', ALL_PRESETS)
def test_image_without_positive_is_finite_and_weighs_empty_weight(preset):
    logits = torch.tensor(LOGITS, requires_grad=True)
    labels = torch.tensor(LABELS, dtype=torch.float32)
    labels[1] = 0  # image 1 has no positive label
    loss = make(preset)(logits, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert (logits.grad[1] != 0).all()


def test_empty_image_weight_choice():
    labels = torch.zeros(2, 4)
    labels[0, 2] = 1
    w = make('R-BCE').compute_reweight(labels)
    assert w[1].tolist() == [1.0] * 4
    w = make('R-BCE', empty_weight=0.25).compute_reweight(labels)
    assert w[1].tolist() == [0.25] * 4
    w = make('CB').compute_reweight(labels)
    assert w[1].tolist() == [1.0] * 4


@pytest.mark.parametrize('preset', ALL_PRESETS)
@pytest.mark.parametrize('form', ['released', 'paper'])
def test_classes_with_no_or_all_positives_are_finite(preset, form):
    counts = [0, 10, 3, 5]  # class 0: n_k = 0; class 1: n_k = N
    logits = torch.tensor(LOGITS, requires_grad=True)
    labels = torch.tensor([[0, 1, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0]],
                          dtype=torch.float32)  # a soft/pseudo 1 on class 0
    loss_fn = make(preset, counts=counts, logit_reg_form=form)
    loss = loss_fn(logits, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert torch.isfinite(loss_fn.compute_reweight(labels) if loss_fn.
                          reweight_func else torch.zeros(1)).all()


def test_prior_bias_clamping():
    loss_fn = make('NT-BCE', counts=[0, 10, 3, 5])
    shift = loss_fn.compute_logit_shift()
    # b_k = log(n / (N - n)) with n clamped to [0.5, N - 0.5]
    expected_b = [
        math.log(0.5 / 9.5),
        math.log(9.5 / 0.5),
        -math.log(10 / 3 - 1),
        0.0
    ]
    assert shift.tolist() == pytest.approx(
        [KAPPA * b / LAM for b in expected_b], abs=1e-12)
    w = make('R-BCE', counts=[0, 10, 3, 5]).compute_reweight(
        torch.tensor([[0., 0., 1., 0.]]))
    # n_0 = 0 counts as 1: r_0 = (1/1) / (1/3) = 3
    assert w[0, 0].item() == pytest.approx(ALPHA + sigmoid(BETA * (3 - MU)))


def test_per_element_weight_composes():
    logits = torch.tensor(LOGITS, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor(LABELS, dtype=torch.float64)
    mask = torch.ones(3, 4, dtype=torch.float64)
    mask[0, 1] = 0  # unknown label
    mask[1, 2] = 0  # PLM-masked positive
    mask[2, 3] = 0.5
    loss_fn = make('DB-Focal', reduction='none')
    elementwise = loss_fn(logits.detach(), labels)
    weighted = loss_fn(logits, labels, weight=mask)
    torch.testing.assert_close(weighted, elementwise * mask)
    # mean over B*K (the head's avg_factor=B is ignored by default)
    mean = make('DB-Focal')(logits, labels, weight=mask, avg_factor=3)
    assert mean.item() == pytest.approx(
        (elementwise * mask).sum().item() / 12, rel=1e-9)
    mean.backward()
    assert logits.grad[0, 1] == 0 and logits.grad[1, 2] == 0
    assert (logits.grad[mask > 0] != 0).all()
    # changing zero-weighted logits changes nothing
    moved = logits.detach().clone()
    moved[0, 1], moved[1, 2] = 50.0, -50.0
    assert make('DB-Focal')(
        moved, labels, weight=mask).item() == pytest.approx(mean.item())
    # use_avg_factor: divide by the caller's avg_factor instead
    per_image = make('DB-Focal', use_avg_factor=True)(
        logits.detach(), labels, weight=mask, avg_factor=3)
    assert per_image.item() == pytest.approx(mean.item() * 4, rel=1e-9)
    # a masked positive still counts in the image's re-balancing
    w = loss_fn.compute_reweight(labels)
    assert w[1, 0].item() == pytest.approx(rbce_weight(LABELS[1], 0))


def test_loss_weight_and_sum():
    logits, labels = tensors()
    base = make('DB')(logits, labels)
    assert make('DB', loss_weight=3.0)(logits, labels).item() == \
        pytest.approx(3 * base.item())
    assert make('DB', reduction='sum')(logits, labels).item() == \
        pytest.approx(12 * base.item())


# ----------------------------------------------------------------------
# statistics: missing, file, checkpoint, hook
# ----------------------------------------------------------------------
def test_missing_statistics_error():
    loss_fn = DistributionBalancedLoss(preset='DB')
    logits, labels = tensors()
    with pytest.raises(RuntimeError, match='ClassStatisticsHook') as err:
        loss_fn(logits, labels)
    assert 'class_counts' in str(err.value)
    # rows that need no statistics work without them
    DistributionBalancedLoss(preset='BCE')(logits, labels)
    DistributionBalancedLoss(preset='Focal')(logits, labels)
    with pytest.raises(ValueError, match='classes'):
        make('DB', counts=[1, 2, 3])(logits, labels)
    with pytest.raises(ValueError, match='num_samples'):
        DistributionBalancedLoss(class_counts=[1, 2])
    with pytest.raises(ValueError, match='more positives'):
        DistributionBalancedLoss(class_counts=[1, 20], num_samples=10)


def test_class_counts_file(tmp_path):
    path = tmp_path / 'counts.json'
    path.write_text(json.dumps(dict(class_counts=COUNTS, num_samples=N)))
    logits, labels = tensors()
    from_file = DistributionBalancedLoss(class_counts_file=str(path))
    assert from_file(logits, labels).item() == pytest.approx(
        make()(logits, labels).item())
    path.write_text(json.dumps(COUNTS))
    with pytest.raises(ValueError, match='num_samples'):
        DistributionBalancedLoss(class_counts_file=str(path))
    listed = DistributionBalancedLoss(
        class_counts_file=str(path), num_samples=N)
    assert listed.class_counts.tolist() == COUNTS
    path.write_text('{"class_counts": [1, 2')
    with pytest.raises(ValueError, match=r"class_counts_file '.*counts\.json' "
                       'is not valid JSON'):
        DistributionBalancedLoss(class_counts_file=str(path))


def test_statistics_are_checkpointed():
    trained = nn.Sequential(make('DB'))
    state = trained.state_dict()
    assert state['0.class_counts'].tolist() == COUNTS
    assert int(state['0.num_samples']) == N
    resumed = nn.Sequential(DistributionBalancedLoss(preset='DB'))
    assert not resumed[0].has_class_statistics
    resumed.load_state_dict(state)
    assert resumed[0].has_class_statistics
    logits, labels = tensors()
    assert resumed[0](logits, labels).item() == pytest.approx(
        trained[0](logits, labels).item())


class FakeDataset:

    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def get_class_counts(self):
        return (self.labels == 1).sum(0)

    def __len__(self):
        return len(self.labels)


class FakeRepeat:
    """Like mmengine's RepeatDataset: no get_class_counts, a ``dataset``."""

    def __init__(self, dataset, times):
        self.dataset, self.times = dataset, times

    def __len__(self):
        return self.times * len(self.dataset)


class Model(nn.Module):

    def __init__(self):
        super().__init__()
        self.head = nn.Module()
        self.head.loss_module = DistributionBalancedLoss(preset='DB')
        self.aux = DistributionBalancedLoss(preset='R-BCE')


def fake_runner(dataset, model):
    return SimpleNamespace(
        train_dataloader=SimpleNamespace(dataset=dataset), model=model)


def test_hook_fills_statistics_from_dataset():
    labels = [[1, 0, -1], [1, 1, 0], [0, 0, 0], [1, -1, 0]]
    model = Model()
    hook = HOOKS.build(dict(type='ClassStatisticsHook'))
    assert isinstance(hook, ClassStatisticsHook)
    # through a repeat wrapper: N is the inner dataset's length
    hook.before_train(fake_runner(FakeRepeat(FakeDataset(labels), 3), model))
    for module in (model.head.loss_module, model.aux):
        assert module.class_counts.tolist() == [3, 1, 0]
        assert int(module.num_samples) == 4
    logits = torch.randn(2, 3)
    target = torch.tensor([[1., 0., 0.], [0., 1., 0.]])
    assert torch.isfinite(model.head.loss_module(logits, target))
    # a wrapped (DataParallel) model is unwrapped
    wrapped_model = Model()
    hook.before_train(
        fake_runner(FakeDataset(labels[:2]), nn.DataParallel(wrapped_model)))
    assert wrapped_model.aux.class_counts.tolist() == [2, 1, 0]
    assert int(wrapped_model.aux.num_samples) == 2
    # override=False keeps statistics a module already holds
    keep = ClassStatisticsHook(override=False)
    keep.before_train(fake_runner(FakeDataset(labels), wrapped_model))
    assert int(wrapped_model.aux.num_samples) == 2
    with pytest.raises(TypeError, match='get_class_counts'):
        hook.before_train(fake_runner(SimpleNamespace(), Model()))


def test_hook_sets_statistics_where_the_model_is(device):
    labels = [[1, 0, -1], [1, 1, 0], [0, 0, 0], [1, -1, 0]]
    logits = torch.tensor([[1.5, -0.5, 0.3], [-1.0, 0.7, -0.2]])
    target = torch.tensor([[1., 0., 0.], [0., 1., 0.]])
    values = {}
    for where in ('cpu', device):
        model = Model().to(where)
        hook = ClassStatisticsHook()
        hook.before_train(fake_runner(FakeDataset(labels), model))
        # again: compares the held (device) statistics with the dataset's
        hook.before_train(fake_runner(FakeDataset(labels), model))
        for module in (model.head.loss_module, model.aux):
            assert module.class_counts.device.type == torch.device(
                where).type
            assert module.class_counts.tolist() == [3, 1, 0]
        values[str(where)] = model.head.loss_module(
            logits.to(where), target.to(where)).item()
    assert values[str(device)] == pytest.approx(values['cpu'], rel=1e-6)
