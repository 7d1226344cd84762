"""ClassUndersampler: the PLM paper's under-sampling baseline."""
import numpy as np
import pytest
from dist_utils import run_distributed
from mmpretrain.registry import DATA_SAMPLERS

import mlimb_mm  # noqa: F401
from mlimb_mm.datasets.samplers import ClassUndersampler

MODULE = 'mlimb_mm.datasets.samplers.class_members'  # get_dist_info


class LabelsOnly:

    def __init__(self, positives):
        self.positives = np.asarray(positives, dtype=bool)

    def __len__(self):
        return len(self.positives)

    def get_tristate_labels(self):
        return self.positives.astype(np.int8)


def single_label(sizes):
    positives = np.zeros((sum(sizes), len(sizes)), dtype=bool)
    positives[np.arange(sum(sizes)),
              np.repeat(np.arange(len(sizes)), sizes)] = True
    return positives


def co_occurring(num=2000, seed=0):
    rng = np.random.default_rng(seed)
    positives = rng.random((num, 5)) < [0.6, 0.3, 0.1, 0.03, 0.01]
    positives[:, 0] |= positives[:, 4]  # the tail drags the head along
    positives[:50] = False  # images without any positive
    return positives


def test_registered_and_arguments():
    sampler = DATA_SAMPLERS.build(dict(type='ClassUndersampler',
                                       samples_per_class=3),
                                  default_args=dict(dataset=LabelsOnly(
                                      single_label([5, 2])),
                                                    seed=1))
    assert isinstance(sampler, ClassUndersampler)
    with pytest.raises(ValueError, match='samples_per_class'):
        ClassUndersampler(LabelsOnly(single_label([5])), 0, seed=0)
    with pytest.raises(ValueError, match='no positive label'):
        ClassUndersampler(LabelsOnly(np.zeros((3, 2), bool)), 2, seed=0)


def test_exactly_s_per_class_without_co_occurrence():
    sizes = [400, 120, 30, 7]
    positives = single_label(sizes)
    sampler = ClassUndersampler(LabelsOnly(positives), 50, seed=0)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        indices = np.fromiter(sampler, dtype=np.int64)
        assert len(indices) == len(sampler) == 50 + 50 + 30 + 7
        np.testing.assert_array_equal(positives[indices].sum(0),
                                      [50, 50, 30, 7])
        assert len(np.unique(indices)) == len(indices)


def test_per_class_draws_are_uniform_over_the_class():
    positives = single_label([400, 10])
    sampler = ClassUndersampler(LabelsOnly(positives), 50, seed=2)
    hits = np.zeros(len(positives))
    epochs = 80
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        hits[np.fromiter(sampler, dtype=np.int64)] += 1
    # every tail image every epoch; each head image with probability
    # 50 / 400 per epoch: mean 10 hits, binomial sd ~3
    assert (hits[400:] == epochs).all()
    assert hits[:400].sum() == 50 * epochs
    assert hits[:400].min() >= 1 and hits[:400].max() <= 10 + 6 * 3


def test_union_of_per_class_draws_without_duplicates():
    positives = co_occurring()
    counts = positives.sum(0)
    s = 40
    sampler = ClassUndersampler(LabelsOnly(positives), s, seed=3)
    for epoch in range(4):
        sampler.set_epoch(epoch)
        indices = np.fromiter(sampler, dtype=np.int64)
        assert len(np.unique(indices)) == len(indices)  # no duplicates
        per_class = positives[indices].sum(0)
        assert (per_class >= np.minimum(s, counts)).all()
        assert len(indices) <= np.minimum(s, counts).sum()
        assert positives[indices].any(1).all()  # unlabelled never drawn
        # co-occurrence: the head gets more than S through the tail picks
        assert per_class[0] > s
        # the epoch is shuffled, not sorted
        assert not np.array_equal(indices, np.sort(indices))


def test_reproducible_per_epoch_and_different_across_epochs():
    dataset = LabelsOnly(co_occurring())
    a = ClassUndersampler(dataset, 40, seed=5)
    b = ClassUndersampler(dataset, 40, seed=5)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    a.set_epoch(1)
    assert list(a) == list(b)
    c = ClassUndersampler(dataset, 40, seed=6)
    assert list(c) != list(ClassUndersampler(dataset, 40, seed=5))


def test_ranks_get_disjoint_padded_shards(monkeypatch):
    dataset = LabelsOnly(co_occurring())
    full = ClassUndersampler(dataset, 40, seed=7).epoch_indices(2)
    shards = []
    for rank in range(3):
        monkeypatch.setattr(f'{MODULE}.get_dist_info',
                            lambda rank=rank: (rank, 3))
        sampler = ClassUndersampler(dataset, 40, seed=7)
        sampler.set_epoch(2)
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler)
    assert len({len(s) for s in shards}) == 1  # padded: equal shards
    assert len(shards[0]) * 3 - len(full) in (0, 1, 2)
    interleaved = np.stack(shards, axis=1).reshape(-1)
    np.testing.assert_array_equal(interleaved[:len(full)], full)
    # disjoint: beyond the padding, no image is in two shards
    first = {i: r for r, shard in enumerate(shards) for i in shard}
    assert len(first) == len(full)


def test_without_round_up_shards_partition_the_epoch(monkeypatch):
    dataset = LabelsOnly(co_occurring())
    full = ClassUndersampler(dataset, 40, seed=7).epoch_indices(0)
    shards = []
    for rank in range(2):
        monkeypatch.setattr(f'{MODULE}.get_dist_info',
                            lambda rank=rank: (rank, 2))
        sampler = ClassUndersampler(dataset, 40, seed=7, round_up=False)
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler)
    assert sorted(shards[0] + shards[1]) == sorted(full.tolist())


def shard_of_this_rank(positives):
    sampler = ClassUndersampler(LabelsOnly(positives), 30)  # seed=None
    sampler.set_epoch(1)
    return dict(seed=sampler.seed,
                shard=list(sampler),
                full=sampler.epoch_indices(1).tolist())


def test_two_gloo_ranks_share_the_seed_and_split_the_epoch(tmp_path):
    positives = co_occurring(num=500)
    rank0, rank1 = run_distributed(shard_of_this_rank, (positives, ),
                                   out_dir=str(tmp_path))
    assert rank0['seed'] == rank1['seed']
    assert rank0['full'] == rank1['full']
    assert len(rank0['shard']) == len(rank1['shard'])
    assert not set(rank0['shard'][:-1]) & set(rank1['shard'][:-1])
    interleaved = np.stack([rank0['shard'], rank1['shard']], 1).reshape(-1)
    np.testing.assert_array_equal(interleaved[:len(rank0['full'])],
                                  rank0['full'])
