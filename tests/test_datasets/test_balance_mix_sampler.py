"""BalanceMixSampler: B random then B minority indices per step, disjoint
rank shards, per-epoch seeding, state."""
import numpy as np
import pytest
import torch
from fake_datasets import FakeTriStateDataset

import mlimb_mm  # noqa: F401
from mlimb_mm.datasets.samplers import BalanceMixSampler, MinoritySampler
from mlimb_mm.datasets.samplers import balance_mix_sampler as bms_mod
from mlimb_mm.datasets.samplers import minority_sampler as ms_mod
from mmpretrain.registry import DATA_SAMPLERS


def make_dataset(num=40, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.zeros((num, 3), np.int8)
    labels[:, 0] = 1
    labels[: num // 8, 2] = 1  # a rare class
    labels[rng.random(num) < 0.5, 1] = 1
    labels[: num // 8, :2] = -1  # rare images: only the rare label known
    return FakeTriStateDataset(labels)


def steps_of(sampler):
    b = sampler.batch_size_per_half
    flat = np.array(list(iter(sampler)))
    assert len(flat) == len(sampler) == 2 * sampler.steps * b
    per_step = flat.reshape(sampler.steps, 2 * b)
    return per_step[:, :b], per_step[:, b:]


def test_registered():
    assert DATA_SAMPLERS.get('BalanceMixSampler') is BalanceMixSampler


def test_first_half_random_second_half_minority():
    ds = make_dataset(40)
    sampler = BalanceMixSampler(ds, batch_size_per_half=4, seed=3)
    assert isinstance(sampler.minority, MinoritySampler)
    assert sampler.steps == 10 and sampler.expected_batch_size == 8
    # make the minority distribution very uneven: class 2 barely learnt
    sampler.minority.update_class_confidences(
        torch.tensor([0.99, 0.9, 1e-4]), torch.tensor([0.9, 0.9, 0.99]))
    sampler.set_epoch(2)
    first, second = steps_of(sampler)
    # random half: a permutation of the dataset over the epoch
    assert sorted(first.reshape(-1).tolist()) == list(range(40))
    # minority half: exactly the minority sampler's epoch for this rank
    sampler.minority.set_epoch(2)
    assert second.reshape(-1).tolist() == list(iter(sampler.minority))
    rare = set(range(40 // 8))
    share_minority = np.isin(second, list(rare)).mean()
    share_random = np.isin(first, list(rare)).mean()
    assert share_minority > 0.8 > share_random


def test_epochs_differ_and_are_reproducible():
    ds = make_dataset(40)
    a = BalanceMixSampler(ds, 4, seed=1)
    b = BalanceMixSampler(ds, 4, seed=1)
    a.set_epoch(0)
    b.set_epoch(0)
    assert list(a) == list(b)
    e0 = list(a)
    a.set_epoch(1)
    assert list(a) != e0


def test_last_step_padded_to_full_halves():
    ds = make_dataset(10)
    sampler = BalanceMixSampler(ds, 4, seed=0)
    assert sampler.steps == 3 and len(sampler) == 24
    first, second = steps_of(sampler)
    assert set(first.reshape(-1).tolist()) == set(range(10))


def test_without_minority_both_halves_random():
    ds = make_dataset(40)
    sampler = BalanceMixSampler(ds, 4, use_minority=False, seed=0)
    assert sampler.minority is None
    first, second = steps_of(sampler)
    assert sorted(first.reshape(-1).tolist()) == list(range(40))
    assert sorted(second.reshape(-1).tolist()) == list(range(40))
    assert not np.array_equal(first, second)


@pytest.mark.parametrize('world_size', [2, 3])
def test_disjoint_rank_shards(monkeypatch, world_size):
    ds = make_dataset(48)
    firsts, seconds = [], []
    for rank in range(world_size):
        monkeypatch.setattr(bms_mod, 'get_dist_info',
                            lambda r=rank: (r, world_size))
        monkeypatch.setattr(ms_mod, 'get_dist_info',
                            lambda r=rank: (r, world_size))
        sampler = BalanceMixSampler(ds, 4, seed=7)
        sampler.set_epoch(5)
        first, second = steps_of(sampler)
        firsts.append(first.reshape(-1).tolist())
        seconds.append(second.reshape(-1).tolist())
        full_minority = sampler.minority.epoch_indices(5)
    # every rank has the same number of steps
    assert len({len(f) for f in firsts}) == 1
    # the random halves: disjoint and covering the dataset
    union = set()
    for f in firsts:
        assert not union & set(f)
        union |= set(f)
    assert union == set(range(48))
    # the minority halves: rank r takes positions r, r + W, ... of one
    # shared epoch
    merged = np.empty(sum(len(s) for s in seconds), np.int64)
    for rank, s in enumerate(seconds):
        merged[rank::world_size] = s
    np.testing.assert_array_equal(merged, full_minority[:len(merged)])


def test_state_dict_roundtrip():
    ds = make_dataset(40)
    a = BalanceMixSampler(ds, 4, seed=11)
    a.minority.update_class_confidences(
        torch.tensor([0.9, 0.5, 0.1]), torch.tensor([0.9, 0.8, 0.9]), epoch=3)
    state = a.state_dict()
    b = BalanceMixSampler(ds, 4, seed=0)
    b.load_state_dict(state)
    a.set_epoch(4)
    b.set_epoch(4)
    assert list(a) == list(b)
    c = BalanceMixSampler(ds, 4, use_minority=False, seed=0)
    with pytest.raises(ValueError, match='use_minority'):
        c.load_state_dict(state)


def test_bad_half_size():
    with pytest.raises(ValueError, match='batch_size_per_half'):
        BalanceMixSampler(make_dataset(8), 0)
