import numpy as np
import pytest
from dist_utils import run_distributed

from mlimb_mm.datasets.samplers import ClassAwareSampler


class LabelsOnly:
    """The least a sampler needs: tri-state labels."""

    def __init__(self, positives):
        self.positives = np.asarray(positives, dtype=bool)

    def __len__(self):
        return len(self.positives)

    def get_tristate_labels(self):
        return self.positives.astype(np.int8)


def co_occurring_labels(seed=0, num_images=3000, num_classes=6):
    """Long-tailed labels where tail classes co-occur with the head."""
    rng = np.random.default_rng(seed)
    base_rates = np.array([0.6, 0.3, 0.15, 0.05, 0.02, 0.01])[:num_classes]
    positives = rng.random((num_images, num_classes)) < base_rates
    # Tail classes drag the head along: head present with 80% of them.
    positives[:, 0] |= positives[:, 4] & (rng.random(num_images) < 0.8)
    return positives


def eq1_prediction(positives):
    """DB paper Eq. (1): p_i = 1/C sum_j n_{i&j} / n_j."""
    positives = positives.astype(np.float64)
    co_occurrence = positives.T @ positives  # n_{i&j}
    class_sizes = np.diag(co_occurrence)
    return (co_occurrence / class_sizes[None, :]).mean(axis=1)


def test_empirical_frequencies_follow_eq1():
    positives = co_occurring_labels()
    sampler = ClassAwareSampler(LabelsOnly(positives), reduce=1, seed=0)
    drawn = []
    for epoch in range(20):
        sampler.set_epoch(epoch)
        drawn.extend(sampler)
    empirical = positives[np.asarray(drawn)].mean(axis=0)
    expected = eq1_prediction(positives)
    # Standard error of a frequency over ~36k draws is below 0.003.
    np.testing.assert_allclose(empirical, expected, atol=0.01)
    # ... and it is far from what uniform sampling gives for the tail.
    assert empirical[-1] > 5 * positives[:, -1].mean()


def test_epoch_length_and_equal_class_visits():
    # One label per image, so every draw shows which class was picked.
    sizes = np.array([400, 120, 30, 7])
    positives = np.zeros((sizes.sum(), 4), dtype=bool)
    positives[np.arange(sizes.sum()), np.repeat(np.arange(4), sizes)] = True
    sampler = ClassAwareSampler(LabelsOnly(positives), reduce=4, seed=1)
    assert len(sampler) == 400 * 4 // 4
    drawn = positives[np.fromiter(sampler, dtype=np.int64)]
    np.testing.assert_array_equal(drawn.sum(0), [100, 100, 100, 100])


def test_cycling_lists_visit_every_tail_image_before_repeating():
    positives = np.zeros((100, 2), dtype=bool)
    positives[:90, 0] = True
    positives[90:, 1] = True  # 10 tail images
    sampler = ClassAwareSampler(LabelsOnly(positives), reduce=1, seed=3)
    indices = np.fromiter(sampler, dtype=np.int64)
    tail_draws = indices[indices >= 90]
    assert len(tail_draws) == 90
    for cycle in range(9):
        chunk = tail_draws[cycle * 10:(cycle + 1) * 10]
        assert sorted(chunk.tolist()) == list(range(90, 100))


def test_reproducible_per_epoch_and_different_across_epochs():
    dataset = LabelsOnly(co_occurring_labels())
    a = ClassAwareSampler(dataset, seed=5)
    b = ClassAwareSampler(dataset, seed=5)
    b.set_epoch(0)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)


def test_ranks_get_disjoint_shards_covering_the_epoch(monkeypatch):
    dataset = LabelsOnly(co_occurring_labels())
    full = ClassAwareSampler(dataset, seed=7).epoch_indices(0)
    shards = []
    for rank in range(3):
        monkeypatch.setattr(
            'mlimb_mm.datasets.samplers.class_members.get_dist_info',
            lambda rank=rank: (rank, 3))
        sampler = ClassAwareSampler(dataset, seed=7)
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler)
    # Position r, r+3, ... of the same epoch: disjoint, and together the
    # whole epoch (plus round-up padding).
    assert sum(len(s) for s in shards) == 3 * len(shards[0])
    interleaved = np.stack([s for s in shards], axis=1).reshape(-1)
    np.testing.assert_array_equal(interleaved[:len(full)], full)


def test_empty_class_is_skipped_and_no_label_is_an_error():
    positives = np.zeros((10, 3), dtype=bool)
    positives[:5, 0] = positives[5:, 1] = True
    sampler = ClassAwareSampler(LabelsOnly(positives), reduce=1, seed=0)
    assert sampler.num_empty_classes == 1
    assert set(sampler) <= set(range(10))
    with pytest.raises(ValueError, match='no positive label'):
        ClassAwareSampler(LabelsOnly(np.zeros((4, 2), bool)), seed=0)
    with pytest.raises(ValueError, match='reduce'):
        ClassAwareSampler(LabelsOnly(positives), reduce=0, seed=0)


def shard_of_this_rank(positives):
    sampler = ClassAwareSampler(LabelsOnly(positives), reduce=2)  # seed=None
    sampler.set_epoch(3)
    return dict(seed=sampler.seed, shard=list(sampler),
                full=sampler.epoch_indices(3).tolist())


def test_two_gloo_ranks_share_the_seed_and_split_the_epoch(tmp_path):
    positives = co_occurring_labels(num_images=400)
    rank0, rank1 = run_distributed(shard_of_this_rank, (positives, ),
                                   out_dir=str(tmp_path))
    assert rank0['seed'] == rank1['seed']  # synchronised random seed
    assert rank0['full'] == rank1['full']
    assert len(rank0['shard']) == len(rank1['shard'])
    interleaved = np.stack([rank0['shard'], rank1['shard']], 1).reshape(-1)
    np.testing.assert_array_equal(interleaved[:len(rank0['full'])],
                                  rank0['full'])
