"""DynamicPartialLoss (Zhang et al., Eq. (8)-(12)) against the equations
computed by hand with plain Python loops, and its partial-label helpers."""
import math

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS

import mlimb_mm  # noqa: F401
from mlimb_mm.models.losses import DynamicPartialLoss
from mlimb_mm.models.utils.partial_labels import (batch_balance,
                                                  dynamic_coefficient,
                                                  dynamic_partial_terms,
                                                  initial_pseudo_labels,
                                                  merge_predictions,
                                                  num_picked, pick_unknown,
                                                  pseudo_label_quality)

# ----------------------------------------------------------------------
# a small batch: B = 5 images, K = 6 classes
# ----------------------------------------------------------------------
TRISTATE = [
    [1, 0, -1, -1, 0, -1],  # positives, negatives and unknowns
    [0, 0, -1, -1, -1, 0],  # no observed positive
    [1, -1, -1, 0, -1, -1],  # predictions all below 0.1 (see LOGITS)
    [-1, -1, -1, -1, -1, -1],  # no observed label at all
    [0, 1, 0, 0, 1, 0],  # no unknown label
]
LOGITS = [
    [2.0, -1.0, 0.3, -0.7, 0.1, 1.2],
    [-0.4, 0.9, -2.0, 0.6, 1.5, -0.2],
    [-3.0, -4.0, -2.5, -5.0, -3.3, -2.9],  # sigmoid < 0.1 everywhere
    [0.5, -0.5, 1.0, -1.0, 0.0, 2.0],
    [-1.0, 1.5, -0.3, -2.0, 0.8, 0.2],
]
# pseudo labels on the unknown labels (observed ones carry their label)
PSEUDO = [
    [None, None, 0.5, 0.2, None, 0.9],
    [None, None, 0.7, 0.05, 0.3, None],
    [None, 0.6, 0.5, None, 0.1, 0.35],
    [0.5, 0.4, 0.8, 0.15, 0.5, 0.95],
    [None] * 6,
]


def batch(dtype=torch.float32, device='cpu'):
    tristate = torch.tensor(TRISTATE, dtype=torch.int8, device=device)
    targets = [[(1. if t == 1 else 0.) if p is None else p
                for t, p in zip(trow, prow)]
               for trow, prow in zip(TRISTATE, PSEUDO)]
    return (torch.tensor(LOGITS, dtype=dtype, device=device,
                         requires_grad=True),
            torch.tensor(targets, device=device), tristate)


def sigmoid(x):
    return 1. / (1. + math.exp(-x))


def eq12_by_hand(logits, targets, tristate, picked, gamma=0.05, d=1.,
                 use_balance=True, use_penalty=True, use_pseudo=True,
                 weight=None, count_all=False, balance_pseudo=True):
    """Eq. (12) with loops; ``picked[i][k]`` True for a picked unknown
    label. Returns the mean over images."""
    logits = [[float(v) for v in row] for row in logits]
    targets = [[float(v) for v in row] for row in targets]
    B, K = len(logits), len(logits[0])
    # alpha, beta from the batch's observed labels (P / T)
    P = T = 0
    for i in range(B):
        for k in range(K):
            if tristate[i][k] != -1 or count_all:
                T += 1
            P += tristate[i][k] == 1
    beta = max(P / T if T else 0., gamma) if use_balance else 1.
    alpha = 1. - beta if use_balance else 1.
    total = 0.
    for i in range(B):
        yhat = [sigmoid(z) for z in logits[i]]
        p = 2. if use_penalty and all(v < 0.1 for v in yhat) else 1.
        obs = [k for k in range(K) if tristate[i][k] != -1]
        pick = [k for k in range(K)
                if use_pseudo and tristate[i][k] == -1 and picked[i][k]]
        w = (lambda k: 1.) if weight is None else (
            lambda k: float(weight[i][k]))
        pos_e = sum(w(k) * targets[i][k] * math.log(yhat[k]) for k in obs)
        neg_e = sum(w(k) * (1 - targets[i][k]) * math.log(1 - yhat[k])
                    for k in obs)
        pos_ne = sum(w(k) * targets[i][k] * math.log(yhat[k]) for k in pick)
        neg_ne = sum(w(k) * (1 - targets[i][k]) * math.log(1 - yhat[k])
                     for k in pick)
        n_e, n_ne = len(obs), len(pick)
        pos_ne = d * pos_ne / n_ne if n_ne else 0.
        neg_ne = d * neg_ne / n_ne if n_ne else 0.
        pos_e = pos_e / n_e if n_e else 0.
        neg_e = neg_e / n_e if n_e else 0.
        if balance_pseudo:
            total += -p * alpha * (pos_e + pos_ne) - p * beta * (neg_e +
                                                                 neg_ne)
        else:
            total += -p * (alpha * pos_e + beta * neg_e) - p * (pos_ne +
                                                                neg_ne)
    return total / B


ALL_UNKNOWN = [[t == -1 for t in row] for row in TRISTATE]


def loss_of(loss, logits, targets, tristate, weight=None):
    return loss(logits, targets, weight=weight, tristate=tristate,
                avg_factor=logits.size(0))


def test_registered_and_needs_tristate():
    loss = MODELS.build(dict(type='DynamicPartialLoss'))
    assert isinstance(loss, DynamicPartialLoss)
    logits, targets, _ = batch()
    with pytest.raises(ValueError, match='pass_tristate=True'):
        loss(logits, targets)


def test_equals_eq12_by_hand_with_every_unknown_picked(device):
    """q = 1: every unknown label enters; the batch holds an image without
    observed positive, one whose predictions are all below 0.1 (p = 2), one
    without observed label and one without unknown label."""
    loss = DynamicPartialLoss(q=1.).to(device)
    loss.set_epoch(4, 10)
    logits, targets, tristate = batch(device=device)
    value = loss_of(loss, logits, targets, tristate)
    d = math.exp((4 + 3) / 10)
    expected = eq12_by_hand(LOGITS, targets.tolist(), TRISTATE, ALL_UNKNOWN,
                            d=d)
    assert value.dtype == torch.float32
    assert value.device.type == device.type
    assert value.item() == pytest.approx(expected, rel=1e-5)
    # the batch's P/T: 4 positives of 14 observed labels > gamma
    assert loss.last_stats['beta'] == pytest.approx(4 / 14)
    assert loss.last_stats['alpha'] == pytest.approx(10 / 14)
    assert loss.last_stats['d'] == pytest.approx(d)


def test_balance_over_all_labels_and_positive_only_batches():
    """P/T over the observed labels gives alpha = 0 on positive-only labels
    (PPL / SPL); balance_count='all' counts every label of the batch."""
    loss = DynamicPartialLoss(q=1., balance_count='all')
    loss.set_epoch(4, 10)
    logits, targets, tristate = batch()
    value = loss_of(loss, logits, targets, tristate)
    expected = eq12_by_hand(LOGITS, targets.tolist(), TRISTATE, ALL_UNKNOWN,
                            d=math.exp(7 / 10), count_all=True)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    assert loss.last_stats['beta'] == pytest.approx(4 / 30)
    spl = torch.tensor([[1, -1, -1, -1], [-1, 1, -1, -1]], dtype=torch.int8)
    observed_loss = DynamicPartialLoss()
    observed_loss(torch.zeros(2, 4), torch.full((2, 4), .5), tristate=spl)
    assert observed_loss.last_stats['alpha'] == 0.
    all_loss = DynamicPartialLoss(balance_count='all', gamma=0.)
    all_loss(torch.zeros(2, 4), torch.full((2, 4), .5), tristate=spl)
    assert all_loss.last_stats['beta'] == pytest.approx(2 / 8)
    with pytest.raises(ValueError):
        DynamicPartialLoss(balance_count='other')


@pytest.mark.parametrize('switch', [
    'use_balance', 'use_dynamic', 'use_penalty', 'use_pseudo', 'use_pick'
])
def test_each_switch_off_gives_the_reduced_formula(switch):
    loss = DynamicPartialLoss(q=1., **{switch: False})
    loss.set_epoch(2, 8)
    logits, targets, tristate = batch()
    value = loss_of(loss, logits, targets, tristate)
    kwargs = dict(d=math.exp((2 + 3) / 8))
    if switch == 'use_balance':
        kwargs['use_balance'] = False  # alpha = beta = 1
    elif switch == 'use_dynamic':
        kwargs['d'] = 1.
    elif switch == 'use_penalty':
        kwargs['use_penalty'] = False
    elif switch == 'use_pseudo':
        kwargs['use_pseudo'] = False  # observed labels only
    expected = eq12_by_hand(LOGITS, targets.tolist(), TRISTATE, ALL_UNKNOWN,
                            **kwargs)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_balance_pseudo_off_keeps_alpha_beta_on_observed_labels_only():
    loss = DynamicPartialLoss(q=1., balance_pseudo=False)
    loss.set_epoch(2, 8)
    logits, targets, tristate = batch()
    value = loss_of(loss, logits, targets, tristate)
    expected = eq12_by_hand(LOGITS, targets.tolist(), TRISTATE, ALL_UNKNOWN,
                            d=math.exp(5 / 8), balance_pseudo=False)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    full = DynamicPartialLoss(q=1.)
    full.set_epoch(2, 8)
    assert loss_of(full, logits, targets, tristate).item() != \
        pytest.approx(expected, rel=1e-3)


def test_switches_change_the_value():
    """The switches are not no-ops on this batch."""
    logits, targets, tristate = batch()
    values = []
    for switch in ('use_balance', 'use_dynamic', 'use_penalty',
                   'use_pseudo'):
        loss = DynamicPartialLoss(q=1., **{switch: False})
        loss.set_epoch(2, 8)
        values.append(loss_of(loss, logits, targets, tristate).item())
    full = DynamicPartialLoss(q=1.)
    full.set_epoch(2, 8)
    values.append(loss_of(full, logits, targets, tristate).item())
    assert len(set(round(v, 8) for v in values)) == len(values)


def picks_from_gradient(loss, logits, targets, tristate, weight=None):
    logits.grad = None
    value = loss_of(loss, logits, targets, tristate, weight)
    value.backward()
    grad = logits.grad.clone()
    return value, grad


def test_unpicked_unknown_labels_get_exactly_zero_gradient():
    loss = DynamicPartialLoss(q=0.5, seed=3)
    loss.set_epoch(1, 6)
    logits, targets, tristate = batch()
    value, grad = picks_from_gradient(loss, logits, targets, tristate)
    unknown = tristate == -1
    picked = unknown & (grad != 0)
    # round(q * N_ne) (half up) unknown labels picked per image ...
    for i, row in enumerate(TRISTATE):
        n_ne = sum(t == -1 for t in row)
        assert int(picked[i].sum()) == math.floor(0.5 * n_ne + 0.5)
    # ... the others have exactly zero gradient, every observed label not
    assert torch.all(grad[unknown & ~picked] == 0)
    assert torch.all(grad[~unknown] != 0)
    # and the value is Eq. (12) over exactly those picks
    expected = eq12_by_hand(LOGITS, targets.tolist(), TRISTATE,
                            picked.tolist(), d=math.exp(4 / 6))
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_picks_reproducible_for_a_seed_and_random_across_steps():
    logits, targets, tristate = batch()

    def picks(seed, steps, epoch=0):
        loss = DynamicPartialLoss(q=0.5, seed=seed)
        loss.set_epoch(epoch, 5)
        out = []
        for _ in range(steps):
            out.append(picks_from_gradient(loss, logits, targets,
                                           tristate)[1] != 0)
        return out

    first, again = picks(0, 6), picks(0, 6)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert len({tuple(p.flatten().tolist()) for p in first}) > 1
    other = picks(1, 6)
    assert any(not torch.equal(a, b) for a, b in zip(first, other))
    # set_epoch restarts the steps: an epoch run again draws the same picks
    loss = DynamicPartialLoss(q=0.5, seed=0)
    loss.set_epoch(0, 5)
    picks_from_gradient(loss, logits, targets, tristate)
    loss.set_epoch(0, 5)
    assert torch.equal(
        picks_from_gradient(loss, logits, targets, tristate)[1] != 0,
        first[0])
    # the run's seed (from the hook) is used when seed is None
    loss = DynamicPartialLoss(q=0.5)
    loss.set_epoch(0, 5)
    loss.set_seed(0)
    assert torch.equal(
        picks_from_gradient(loss, logits, targets, tristate)[1] != 0,
        first[0])


def test_picks_are_the_same_on_every_device(device):
    """The picks are drawn from a CPU generator: a seed picks the same
    unknown labels on the CPU and on a GPU, and only they get a gradient."""
    grads = {}
    for where in ('cpu', device):
        loss = DynamicPartialLoss(q=0.5, seed=3).to(where)
        loss.set_epoch(1, 6)
        logits, targets, tristate = batch(device=where)
        value, grad = picks_from_gradient(loss, logits, targets, tristate)
        assert torch.isfinite(value) and value.device.type == \
            torch.device(where).type
        grads[str(where)] = grad.cpu()
    cpu, dev = grads['cpu'], grads[str(device)]
    assert torch.equal(cpu != 0, dev != 0)
    torch.testing.assert_close(dev, cpu, rtol=1e-5, atol=1e-7)


def test_per_label_weight_multiplies_each_term():
    """PLM masks / DB re-weighting compose through the per-label weight;
    the counts N_e and qN_ne stay those of the labels."""
    rng = np.random.default_rng(0)
    weight = rng.random((5, 6)).round(2)
    weight[0, 1] = 0.  # a masked label
    loss = DynamicPartialLoss(q=1.)
    loss.set_epoch(0, 4)
    logits, targets, tristate = batch()
    value = loss_of(loss, logits, targets, tristate,
                    torch.tensor(weight, dtype=torch.float32))
    expected = eq12_by_hand(LOGITS, targets.tolist(), TRISTATE, ALL_UNKNOWN,
                            d=math.exp(3 / 4), weight=weight.tolist())
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_batch_without_observed_label_and_extreme_logits_are_finite():
    loss = DynamicPartialLoss(q=0.5, seed=0)
    loss.set_epoch(0, 3)
    tristate = torch.full((3, 4), -1, dtype=torch.int8)
    logits = torch.tensor([[100., -100., 0., 50.], [-80.] * 4,
                           [30., 30., -30., 0.]], requires_grad=True)
    targets = torch.full((3, 4), 0.5)
    value = loss_of(loss, logits, targets, tristate)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    assert loss.last_stats['beta'] == pytest.approx(0.05)  # P/T -> 0
    # observed labels only, at saturated logits
    tristate = torch.tensor([[1, 0, 1, 0]] * 3, dtype=torch.int8)
    value = loss_of(loss, logits, (tristate == 1).float(), tristate)
    assert torch.isfinite(value)
    # the empty batch
    empty = torch.zeros((0, 4), requires_grad=True)
    value = loss_of(loss, empty, empty.detach(),
                    torch.zeros((0, 4), dtype=torch.int8))
    assert torch.isfinite(value)


def test_float32_whatever_the_input_dtype_and_under_autocast():
    loss = DynamicPartialLoss(q=1.)
    loss.set_epoch(1, 4)
    logits, targets, tristate = batch(torch.bfloat16)
    value = loss_of(loss, logits, targets, tristate)
    assert value.dtype == torch.float32
    rounded = logits.detach().float().tolist()
    expected = eq12_by_hand(rounded, targets.tolist(), TRISTATE, ALL_UNKNOWN,
                            d=math.exp(4 / 4))
    assert value.item() == pytest.approx(expected, rel=1e-5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        logits32, _, _ = batch()
        value = loss_of(loss, logits32 * 1., targets, tristate)
    assert value.dtype == torch.float32
    expected = eq12_by_hand(LOGITS, targets.tolist(), TRISTATE, ALL_UNKNOWN,
                            d=math.exp(4 / 4))
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_d_without_epoch_is_one_and_reduction_none():
    loss = DynamicPartialLoss(q=1.)
    logits, targets, tristate = batch()
    value = loss_of(loss, logits, targets, tristate)
    expected = eq12_by_hand(LOGITS, targets.tolist(), TRISTATE, ALL_UNKNOWN)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    terms = loss(logits, targets, tristate=tristate, reduction_override='none')
    assert terms.shape == (5, 6)
    assert terms.sum().item() / 5 == pytest.approx(expected, rel=1e-5)
    assert torch.all(terms[4] != 0) and torch.all(terms[3] != 0)


# ----------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------
def test_dynamic_coefficient_as_printed_and_as_described():
    assert dynamic_coefficient(0, 20, 3) == pytest.approx(math.exp(3 / 20))
    assert dynamic_coefficient(19, 20, 3) == pytest.approx(math.exp(22 / 20))
    # the text: both parts weigh the same (d = 1) at epoch e_T - m
    assert dynamic_coefficient(17, 20, 3, 'text') == pytest.approx(1.)
    assert dynamic_coefficient(5, 20, 3, 'text') < 1 < dynamic_coefficient(
        18, 20, 3, 'text')
    with pytest.raises(ValueError):
        dynamic_coefficient(0, 20, 3, 'other')


def test_pick_counts_and_extremes():
    unknown = torch.tensor([[True] * 7 + [False], [False] * 8,
                            [True] + [False] * 7])
    gen = torch.Generator().manual_seed(0)
    for q, counts in ((0.5, [4, 0, 1]), (0.3, [2, 0, 0]), (1., [7, 0, 1]),
                      (0., [0, 0, 0])):
        picked = pick_unknown(unknown, q, gen)
        assert picked.sum(1).tolist() == counts
        assert not (picked & ~unknown).any()
    assert num_picked(torch.tensor([5]), 0.5).item() == 3  # half up
    # uniform: every unknown label is picked about half the time
    unknown = torch.ones((20000, 4), dtype=torch.bool)
    freq = pick_unknown(unknown, 0.5, gen).float().mean(0)
    assert torch.allclose(freq, torch.full((4, ), 0.5), atol=0.02)


def test_initial_pseudo_labels_and_merge_keep_observed_labels():
    observed = torch.tensor([[1, 0, -1], [-1, -1, 1]], dtype=torch.int8)
    targets = (observed == 1).half()
    init = initial_pseudo_labels(targets, observed, 0.5)
    assert init.dtype == torch.float16
    assert init.tolist() == [[1., 0., .5], [.5, .5, 1.]]
    probs = torch.tensor([[0.9, 0.8, 0.25], [0.125, 0.75, 0.0]])
    merged = merge_predictions(init, observed, probs)
    assert merged.tolist() == [[1., 0., .25], [.125, .75, 1.]]


def test_pseudo_label_quality_by_hand(device):
    observed = torch.tensor([[1, -1, -1], [-1, 0, -1], [-1, -1, 1]],
                            dtype=torch.int8, device=device)
    clean = torch.tensor([[1, 1, 0], [0, 0, 1], [1, 0, 1]], dtype=torch.int8)
    pseudo = torch.tensor([[1., .8, .6], [.2, 0., .4], [.7, .1, 1.]],
                          device=device)
    q = pseudo_label_quality(pseudo, observed, clean,
                             dict(a=np.array([0]), b=np.array([1, 2])))
    assert q['num_unknown'] == 6
    assert q['mean'] == pytest.approx((.8 + .6 + .2 + .4 + .7 + .1) / 6)
    # hidden (0,1)=1 p.8 ok, (0,2)=0 p.6 wrong, (1,0)=0 p.2 ok,
    # (1,2)=1 p.4 wrong, (2,0)=1 p.7 ok, (2,1)=0 p.1 ok
    assert q['accuracy'] == pytest.approx(4 / 6)
    assert q['mean_on_hidden_positives'] == pytest.approx((.8 + .4 + .7) / 3)
    assert q['mean_on_hidden_negatives'] == pytest.approx((.6 + .2 + .1) / 3)
    assert q['accuracy_per_class'] == pytest.approx([1., 1., 0.])
    assert q['mean_per_class'] == pytest.approx([.45, .45, .5])
    assert q['groups']['a']['accuracy'] == pytest.approx(1.)
    assert q['groups']['b']['accuracy'] == pytest.approx(2 / 4)
    # without clean labels: means only; a class without unknowns -> None
    observed[:, 0] = 1
    q = pseudo_label_quality(pseudo, observed, None, chunk_elems=3)
    assert 'accuracy' not in q and q['mean_per_class'][0] is None


# ----------------------------------------------------------------------
# composition with PLM masks and DB re-weighting
# ----------------------------------------------------------------------
def test_db_reweighting_composes_through_label_weighting():
    """label_weighting's compute_reweight of the observed positives
    multiplies each term, with the head's per-label weight."""
    from mlimb_mm.models.losses import DistributionBalancedLoss
    counts = np.array([50, 10, 5, 30, 2, 8])
    loss = DynamicPartialLoss(
        q=1., label_weighting=dict(type='DistributionBalancedLoss',
                                   preset='R-BCE'))
    # what ClassStatisticsHook does: every module with set_class_statistics
    modules = [m for m in loss.modules()
               if hasattr(m, 'set_class_statistics')]
    assert len(modules) == 1
    modules[0].set_class_statistics(counts, 100)
    loss.set_epoch(1, 5)
    logits, targets, tristate = batch()
    mask = torch.ones(5, 6)
    mask[0, 0] = mask[1, 2] = 0.  # PLM-masked labels
    value = loss_of(loss, logits, targets, tristate, mask)
    ref = DistributionBalancedLoss(preset='R-BCE')
    ref.set_class_statistics(counts, 100)
    reweight = ref.compute_reweight((tristate == 1).float()).float()
    expected = eq12_by_hand(LOGITS, targets.tolist(), TRISTATE, ALL_UNKNOWN,
                            d=math.exp(4 / 5),
                            weight=(reweight * mask).tolist())
    assert value.item() == pytest.approx(expected, rel=1e-5)
    assert not torch.allclose(reweight, torch.ones_like(reweight))
    with pytest.raises(TypeError, match='compute_reweight'):
        DynamicPartialLoss(label_weighting=dict(type='MultiLabelBCELoss'))


def test_plm_masks_through_the_head_give_zero_gradient():
    """The head multiplies label_weight (e.g. PLM's masks) into the weight
    it passes: a masked label, observed or unknown, gets no gradient."""
    from mmpretrain.structures import DataSample
    head = MODELS.build(
        dict(type='TriStateLinearClsHead', num_classes=6, in_channels=4,
             ignore_unknown=False, pass_tristate=True,
             loss=dict(type='DynamicPartialLoss', q=1.)))
    _, targets, tristate = batch()
    samples = []
    for i in range(5):
        s = DataSample()
        s.set_metainfo({'sample_idx': i})
        s.set_field(tristate[i], 'gt_tristate')
        s.set_field(targets[i], 'gt_score')
        weight = torch.ones(6)
        weight[[0, 2]] = 0.  # class 0 observed in image 0, 2 unknown
        s.set_field(weight, 'label_weight')
        samples.append(s)
    feats = torch.randn(5, 4, requires_grad=True)
    logits = head.fc(feats)
    logits.retain_grad()
    head._get_loss(logits, samples)['loss'].backward()
    assert torch.all(logits.grad[:, [0, 2]] == 0)
    assert torch.all(logits.grad[:, [1, 3, 4, 5]].abs().sum(0) > 0)


@pytest.mark.parametrize('balance_pseudo', [True, False])
def test_pseudo_term_minimiser_and_the_loop_it_drives(balance_pseudo):
    """Where the picked unknown label's term is minimal, by hand: setting
    its gradient ``-a y (1 - s) + b (1 - y) s`` to 0 gives
    ``s* = a y / (a y + b (1 - y))``, with ``a, b = alpha, beta`` (or 1, 1
    with ``balance_pseudo=False``). A sparse batch has ``P / T < gamma``,
    so ``alpha = 0.95``, ``beta = 0.05``: pseudo labels that follow
    ``s*`` epoch after epoch climb from 0.5 towards 1 (0.95, then 0.997),
    whatever the image; without alpha / beta on them they stay put."""
    tristate = torch.tensor([[0, -1]], dtype=torch.int8)
    alpha, beta = batch_balance(tristate, gamma=0.05)
    assert (alpha, beta) == pytest.approx((0.95, 0.05))
    a, b = (alpha, beta) if balance_pseudo else (1., 1.)

    def gradient(pseudo, logit):
        logits = torch.tensor([[0., logit]], dtype=torch.float64,
                              requires_grad=True)
        terms = dynamic_partial_terms(
            logits, torch.tensor([[0., pseudo]]), tristate,
            tristate == -1, alpha, beta, d=1., p=None,
            balance_pseudo=balance_pseudo)
        terms.sum().backward()
        return logits.grad[0, 1].item()

    pseudo = 0.5
    for _ in range(3):
        best = a * pseudo / (a * pseudo + b * (1 - pseudo))
        logit = math.log(best / (1 - best))
        assert gradient(pseudo, logit) == pytest.approx(0., abs=1e-7)
        assert gradient(pseudo, logit - .01) < 0 < gradient(
            pseudo, logit + .01)
        pseudo = best
    if balance_pseudo:
        assert pseudo > 0.9998
    else:
        assert pseudo == 0.5
