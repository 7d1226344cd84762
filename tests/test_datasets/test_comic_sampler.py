"""COMICSampler: instance / reversed / class-balanced streams per step,
class frequencies as defined, disjoint rank shards, per-epoch seeding."""
import numpy as np
import pytest
from fake_datasets import FakeTriStateDataset
from mmpretrain.registry import DATA_SAMPLERS

import mlimb_mm  # noqa: F401
from mlimb_mm.datasets.samplers import COMICSampler
from mlimb_mm.datasets.samplers import comic_sampler as cs_mod
from mlimb_mm.models.utils.comic import stream_class_probabilities

SIZES = [200, 50, 20, 5, 0]  # images per class; the last class has none


def single_label_dataset(sizes=SIZES):
    """Each image has exactly one positive: the drawn image names the drawn
    class."""
    labels = np.zeros((sum(sizes), len(sizes)), np.int8)
    row = 0
    for cls, size in enumerate(sizes):
        labels[row:row + size, cls] = 1
        row += size
    labels[::7, -1] = -1  # unknown labels do not count
    return FakeTriStateDataset(labels)


def class_of(dataset, indices):
    return np.argmax(dataset.labels[indices] == 1, axis=1)


def blocks(sampler):
    b, n = sampler.batch_size_per_stream, sampler.num_streams
    flat = np.array(list(iter(sampler)))
    assert len(flat) == len(sampler) == n * sampler.steps * b
    steps = flat.reshape(sampler.steps, n, b)
    return [steps[:, i].reshape(-1) for i in range(n)]


def test_registered_and_layout():
    assert DATA_SAMPLERS.get('COMICSampler') is COMICSampler
    ds = single_label_dataset()
    sampler = COMICSampler(ds, batch_size_per_stream=8, seed=0)
    assert sampler.streams == ('instance', 'reversed', 'balanced')
    assert sampler.expected_batch_size == 24
    assert sampler.steps == -(-275 // 8)
    instance, _, _ = blocks(sampler)
    # the instance stream is a permutation of the dataset (padded)
    assert set(instance) == set(range(275))
    assert len(instance) == sampler.steps * 8


def test_class_frequencies_follow_their_definitions():
    ds = single_label_dataset()
    sampler = COMICSampler(ds, batch_size_per_stream=500, seed=1,
                           streams=('reversed', 'balanced'))
    freqs = {}
    for epoch in range(20):  # 10,000 draws per stream
        sampler.set_epoch(epoch)
        for kind, idx in zip(sampler.streams, blocks(sampler)):
            freqs.setdefault(kind, []).append(
                np.bincount(class_of(ds, idx), minlength=len(SIZES)))
    counts = np.array(SIZES, float)
    reversed_def = np.r_[counts[:4].max() / counts[:4], 0]
    reversed_def /= reversed_def.sum()
    balanced_def = np.r_[np.full(4, 0.25), 0]
    for kind, expected in (('reversed', reversed_def),
                           ('balanced', balanced_def)):
        total = np.sum(freqs[kind], axis=0)
        np.testing.assert_allclose(total / total.sum(), expected, atol=0.015)
        np.testing.assert_allclose(
            stream_class_probabilities(SIZES, kind), expected)
    assert stream_class_probabilities(SIZES, 'instance') is None
    # within a class the images are used evenly (cycling lists)
    sampler.set_epoch(0)
    balanced = blocks(sampler)[1]
    members = balanced[class_of(ds, balanced) == 0]
    uses = np.bincount(members, minlength=200)[:200]
    assert uses.max() - uses.min() <= 1


@pytest.mark.parametrize('world_size', [2, 3])
def test_disjoint_rank_shards(monkeypatch, world_size):
    ds = single_label_dataset()
    shards = []
    for rank in range(world_size):
        monkeypatch.setattr(cs_mod, 'get_dist_info',
                            lambda r=rank: (r, world_size))
        sampler = COMICSampler(ds, batch_size_per_stream=6, seed=5)
        sampler.set_epoch(3)
        shards.append((sampler, blocks(sampler)))
    steps = {s.steps for s, _ in shards}
    assert len(steps) == 1  # every rank runs the same number of steps
    full_sampler = shards[0][0]
    for stream in range(3):
        epoch = full_sampler.epoch_draws(stream)
        per_rank = [b[stream] for _, b in shards]
        if stream == 0:
            # instance: a permutation split into disjoint shards
            real = [set(p[:len(range(r, len(epoch), world_size))])
                    for r, p in enumerate(per_rank)]
            for a in range(world_size):
                for b in range(a + 1, world_size):
                    assert not real[a] & real[b]
            assert set().union(*real) == set(range(len(ds)))
        else:
            # re-sampled: disjoint positions of one shared epoch of draws
            assert len(epoch) == world_size * len(per_rank[0])
            for rank, part in enumerate(per_rank):
                np.testing.assert_array_equal(part, epoch[rank::world_size])


def test_epochs_reproducible_and_different():
    ds = single_label_dataset()
    a, b = COMICSampler(ds, 8, seed=2), COMICSampler(ds, 8, seed=2)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(iter(a)) == list(iter(b))
    b.set_epoch(2)
    assert list(iter(a)) != list(iter(b))
    state = a.state_dict()
    c = COMICSampler(ds, 8, seed=99)
    c.load_state_dict(state)
    c.set_epoch(1)
    assert list(iter(c)) == list(iter(a))


def test_bad_arguments():
    ds = single_label_dataset()
    with pytest.raises(ValueError, match='streams'):
        COMICSampler(ds, 8, streams=('instance', 'tail'))
    with pytest.raises(ValueError, match='batch_size_per_stream'):
        COMICSampler(ds, 0)
