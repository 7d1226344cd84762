"""BalanceMix's confidence-based minority sampler, Eq. (2)-(4)."""
import io

import numpy as np
import pytest
import torch
from dist_utils import run_distributed
from mmpretrain.registry import DATA_SAMPLERS

from mlimb_mm.datasets.samplers import (MinoritySampler, class_confidences,
                                        confidence_sums,
                                        minority_probabilities,
                                        minority_sampling_probabilities,
                                        minority_scores)


class LabelsOnly:
    """The least a sampler needs: tri-state labels."""

    def __init__(self, labels):
        self.labels = np.asarray(labels, dtype=np.int8)

    def __len__(self):
        return len(self.labels)

    def get_tristate_labels(self):
        return self.labels


# 3 images x 3 classes, worked out by hand below
LABELS = [[1, 0, -1],
          [0, 1, 1],
          [1, 1, 0]]
PROBS = [[0.9, 0.2, 0.5],
         [0.4, 0.6, 0.3],
         [0.7, 0.8, 0.1]]
# Eq. (2): P(k) mean p over positives, A(k) mean (1 - p) over negatives
#   class 0: P = (0.9 + 0.7) / 2 = 0.8   A = (1 - 0.4)      = 0.6
#   class 1: P = (0.6 + 0.8) / 2 = 0.7   A = (1 - 0.2)      = 0.8
#   class 2: P = 0.3                     A = (1 - 0.1)      = 0.9
#            (image 0's label of class 2 is unknown: skipped)
P_HAND = [0.8, 0.7, 0.3]
A_HAND = [0.6, 0.8, 0.9]
# Eq. (3): Score_0 = P(0) + A(1)        = 0.8 + 0.8       = 1.6
#          Score_1 = A(0) + P(1) + P(2) = 0.6 + 0.7 + 0.3 = 1.6
#          Score_2 = P(0) + P(1) + A(2) = 0.8 + 0.7 + 0.9 = 2.4
SCORES_HAND = [1.6, 1.6, 2.4]
# Eq. (4): 1/Score = 0.625, 0.625, 0.41667; sum 1.66667
PROBS_HAND = [0.375, 0.375, 0.25]
# per-class sampling mass sum_i p_i [y_ik = 1]
MASS_HAND = [0.375 + 0.25, 0.375 + 0.25, 0.375]


def test_equations_2_to_4_by_hand(device):
    """On the device of the predictions (a GPU's) the sums are made there
    and the sampler's state comes back to the CPU."""
    probs = torch.tensor(PROBS, device=device)
    sums = confidence_sums(probs, torch.tensor(LABELS))
    assert sums.device.type == device.type
    presence, absence = class_confidences(sums)
    np.testing.assert_allclose(presence, P_HAND, atol=1e-7)
    np.testing.assert_allclose(absence, A_HAND, atol=1e-7)
    scores = minority_scores(presence, absence, torch.tensor(LABELS))
    np.testing.assert_allclose(scores, SCORES_HAND, atol=1e-7)
    np.testing.assert_allclose(minority_probabilities(scores), PROBS_HAND,
                               atol=1e-7)
    np.testing.assert_allclose(
        minority_sampling_probabilities(probs, torch.tensor(LABELS)),
        PROBS_HAND, atol=1e-7)
    sampler = MinoritySampler(LabelsOnly(LABELS), seed=0)
    sampler.update_from_predictions(probs, epoch=0)
    # labels given on the device too
    other = MinoritySampler(LabelsOnly(LABELS), seed=0)
    other.update_from_predictions(probs, torch.tensor(LABELS, device=device),
                                  epoch=0)
    np.testing.assert_allclose(other.sampling_probabilities(), PROBS_HAND,
                               atol=1e-7)
    np.testing.assert_allclose(sampler.sampling_probabilities(), PROBS_HAND,
                               atol=1e-7)
    np.testing.assert_allclose(sampler.presence, P_HAND, atol=1e-7)
    np.testing.assert_allclose(sampler.absence, A_HAND, atol=1e-7)
    np.testing.assert_allclose(sampler.class_mass(), MASS_HAND, atol=1e-7)


def test_positives_only_variant_by_hand():
    # Score_0 = P(0) = 0.8; Score_1 = P(1) + P(2) = 1.0; Score_2 = P(0) +
    # P(1) = 1.5; image 3 has no positive: never drawn
    labels = LABELS + [[0, 0, -1]]
    probs = PROBS + [[0.1, 0.1, 0.5]]
    sampler = MinoritySampler(LabelsOnly(labels), seed=0,
                              score_terms='positives')
    sampler.update_from_predictions(torch.tensor(probs), epoch=0)
    np.testing.assert_allclose(sampler.presence, P_HAND, atol=1e-7)
    inv = np.array([1 / 0.8, 1 / 1.0, 1 / 1.5, 0.0])
    np.testing.assert_allclose(sampler.sampling_probabilities(),
                               inv / inv.sum(), atol=1e-7)
    assert 3 not in set(sampler.epoch_indices(0).tolist())
    with pytest.raises(ValueError, match='score_terms'):
        MinoritySampler(LabelsOnly(labels), seed=0, score_terms='neg')


def test_guards_no_known_label_and_missing_classes():
    labels = torch.tensor([[1, -1], [-1, -1], [0, 1]])
    probs = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    out = minority_sampling_probabilities(probs, labels)
    assert out[1] == 0  # nothing known: never drawn
    np.testing.assert_allclose(out.sum(), 1.0)
    # Score 0 everywhere (e.g. all confidences 0): the floor keeps it finite
    weights = minority_probabilities(torch.zeros(3))
    np.testing.assert_allclose(weights, [1 / 3] * 3)
    # a class without positives among the predictions keeps its previous
    # P (or the mean of the others at the first update)
    sampler = MinoritySampler(LabelsOnly(LABELS), seed=0)
    sampler.update_class_confidences(torch.tensor([0.8, float('nan'), 0.4]),
                                     torch.tensor(A_HAND))
    np.testing.assert_allclose(sampler.presence, [0.8, 0.6, 0.4])
    sampler.update_class_confidences(torch.tensor([0.5, float('nan'), 0.5]),
                                     torch.tensor(A_HAND))
    np.testing.assert_allclose(sampler.presence, [0.5, 0.6, 0.5])
    with pytest.raises(ValueError):
        sampler.update_class_confidences(torch.ones(2), torch.ones(2))


def long_tailed_labels(seed=0, num=400, num_classes=5):
    rng = np.random.default_rng(seed)
    rates = np.array([0.6, 0.3, 0.1, 0.04, 0.02])[:num_classes]
    labels = (rng.random((num, num_classes)) < rates).astype(np.int8)
    labels[rng.random((num, num_classes)) < 0.05] = -1
    return labels


def fake_predictions(labels, seed=0):
    """Confident on the head classes, unsure on the tail."""
    rng = np.random.default_rng(seed)
    conf = np.linspace(0.95, 0.4, labels.shape[1])
    p_pos = np.clip(conf + rng.normal(0, 0.05, labels.shape), 0.01, 0.99)
    p_neg = np.clip(1 - conf + rng.normal(0, 0.05, labels.shape) * 0.5,
                    0.01, 0.99) * 0.3
    return torch.tensor(np.where(labels == 1, p_pos, p_neg),
                        dtype=torch.float32)


def test_empirical_frequencies_follow_the_probabilities():
    labels = long_tailed_labels()
    sampler = MinoritySampler(LabelsOnly(labels), seed=1)
    sampler.update_from_predictions(fake_predictions(labels), epoch=0)
    probs = sampler.sampling_probabilities().numpy()
    assert probs.max() / probs.min() > 1.5  # far from uniform
    counts = np.zeros(len(labels))
    epochs = 100
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        counts += np.bincount(list(sampler), minlength=len(labels))
    draws = epochs * len(labels)
    expected = probs * draws
    # Pearson chi-square with 399 degrees of freedom: mean 399, sd ~28
    chi2 = ((counts - expected)**2 / expected).sum()
    assert chi2 < 399 + 5 * 28
    # the tail classes are over-sampled compared with uniform sampling
    mass = sampler.class_mass().numpy()
    uniform = sampler.uniform_class_mass().numpy()
    assert mass[-1] > uniform[-1] and mass[0] < uniform[0]
    drawn_labels = (labels == 1)[np.repeat(np.arange(len(labels)),
                                           counts.astype(int))]
    np.testing.assert_allclose(drawn_labels.mean(0), mass, atol=0.01)


def test_uniform_before_any_scores():
    labels = long_tailed_labels()
    sampler = MinoritySampler(LabelsOnly(labels), seed=2)
    assert sampler.probabilities is None
    np.testing.assert_allclose(sampler.sampling_probabilities(),
                               1 / len(labels))
    assert len(sampler) == len(labels)
    counts = np.zeros(len(labels))
    for epoch in range(50):
        sampler.set_epoch(epoch)
        indices = list(sampler)
        assert len(indices) == len(labels)
        counts += np.bincount(indices, minlength=len(labels))
    expected = 50.0
    chi2 = ((counts - expected)**2 / expected).sum()
    assert chi2 < 399 + 5 * 28
    # with replacement: an epoch repeats some images and misses others
    assert len(set(indices)) < len(labels)


def test_set_epoch_reproducibility():
    labels = long_tailed_labels()
    a = MinoritySampler(LabelsOnly(labels), seed=5)
    b = DATA_SAMPLERS.build(
        dict(type='MinoritySampler', dataset=LabelsOnly(labels), seed=5))
    preds = fake_predictions(labels)
    for sampler in (a, b):
        sampler.update_from_predictions(preds, epoch=0)
        sampler.set_epoch(1)
    assert list(a) == list(b)
    first = list(a)
    b.set_epoch(2)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(b) == first
    assert list(a) == first  # iterating again gives the same epoch


def test_ranks_get_disjoint_shards_covering_the_epoch(monkeypatch):
    labels = long_tailed_labels(num=401)  # odd: padded
    preds = fake_predictions(labels)
    full = None
    shards = []
    for rank in range(3):
        monkeypatch.setattr(
            'mlimb_mm.datasets.samplers.minority_sampler.get_dist_info',
            lambda rank=rank: (rank, 3))
        sampler = MinoritySampler(LabelsOnly(labels), seed=7)
        sampler.update_from_predictions(preds)
        full = sampler.epoch_indices(0)
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler) == 134
    interleaved = np.stack(shards, axis=1).reshape(-1)
    np.testing.assert_array_equal(interleaved[:len(full)], full)
    np.testing.assert_array_equal(interleaved[len(full):],
                                  full[:3 * 134 - len(full)])


def update_on_this_rank(labels, preds):
    """Each rank sees a different half of the predictions (with their
    labels) and a different world view of nothing else."""
    from mmengine.dist import get_rank
    rank = get_rank()
    sampler = MinoritySampler(LabelsOnly(labels))  # seed=None: synchronised
    before = sampler.sampling_probabilities().clone()
    idx = np.arange(rank, len(labels), 2)
    sampler.update_from_predictions(preds[idx], torch.from_numpy(labels[idx]),
                                    epoch=0)
    sampler.set_epoch(1)
    return dict(seed=sampler.seed, before=before,
                probs=sampler.sampling_probabilities().clone(),
                presence=sampler.presence, absence=sampler.absence,
                shard=list(sampler), full=sampler.epoch_indices(1).tolist(),
                state=sampler.state_dict())


def test_two_gloo_ranks_hold_identical_probabilities(tmp_path):
    labels = long_tailed_labels(num=300)
    preds = fake_predictions(labels)
    rank0, rank1 = run_distributed(update_on_this_rank, (labels, preds),
                                   out_dir=str(tmp_path))
    assert rank0['seed'] == rank1['seed']
    # the statistics were all-reduced: both ranks hold the probabilities of
    # the whole set's predictions, bitwise equal
    assert torch.equal(rank0['probs'], rank1['probs'])
    assert torch.equal(rank0['presence'], rank1['presence'])
    expected = minority_sampling_probabilities(preds, torch.tensor(labels))
    torch.testing.assert_close(rank0['probs'], expected, rtol=1e-12,
                               atol=1e-15)
    assert not torch.allclose(rank0['probs'], rank0['before'])
    # same epoch on both, disjoint interleaved shards
    assert rank0['full'] == rank1['full']
    assert len(rank0['shard']) == len(rank1['shard']) == 150
    interleaved = np.stack([rank0['shard'], rank1['shard']], 1).reshape(-1)
    np.testing.assert_array_equal(interleaved, rank0['full'])


def test_state_dict_round_trip_and_history():
    labels = long_tailed_labels()
    sampler = MinoritySampler(LabelsOnly(labels), seed=11)
    uniform_mass = sampler.uniform_class_mass()
    np.testing.assert_allclose(sampler.class_mass(), uniform_mass)
    for epoch in range(3):
        preds = fake_predictions(labels, seed=epoch)
        preds = preds ** (1 / (1 + epoch))  # the model grows confident
        sampler.update_from_predictions(preds, epoch=epoch)
    history = sampler.history
    assert history['epochs'] == [0, 1, 2]
    assert history['class_mass'].shape == (3, labels.shape[1])
    torch.testing.assert_close(history['class_mass'][-1],
                               sampler.class_mass())
    sampler.set_epoch(3)
    drawn = list(sampler)

    buffer = io.BytesIO()
    torch.save(sampler.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    fresh = MinoritySampler(LabelsOnly(labels), seed=999)
    fresh.load_state_dict(state)
    assert fresh.seed == 11 and fresh.scores_epoch == 2
    assert torch.equal(fresh.sampling_probabilities(),
                       sampler.sampling_probabilities())
    assert torch.equal(fresh.history['class_mass'], history['class_mass'])
    assert fresh.history['epochs'] == [0, 1, 2]
    fresh.set_epoch(3)
    assert list(fresh) == drawn
    # a state saved before any update restores uniform sampling
    blank = MinoritySampler(LabelsOnly(labels), seed=3)
    fresh.load_state_dict(blank.state_dict())
    assert fresh.probabilities is None and fresh.history['epochs'] == []
    # a state of another label space is refused
    other = MinoritySampler(LabelsOnly(labels[:, :3]), seed=0)
    with pytest.raises(ValueError, match='classes'):
        other.load_state_dict(state)
