import io
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from mlimb_mm.structures import LabelStore

OBSERVED = np.array([
    [1, 0, -1],
    [0, -1, 1],
    [-1, -1, -1],
    [1, 1, 0],
], dtype=np.int8)


def make_store():
    return LabelStore(OBSERVED.copy())


# ----------------------------------------------------------------------
# construction and fields
# ----------------------------------------------------------------------
def test_observed_wraps_int8_numpy_without_copy():
    obs = OBSERVED.copy()
    store = LabelStore(obs)
    assert store.num_samples == 4 and store.num_classes == 3
    assert store.shape == (4, 3)
    assert store['observed'].dtype == torch.int8
    assert np.shares_memory(store['observed'].numpy(), obs)
    assert list(store.fields) == ['observed']
    # other dtypes / tensors are converted
    store2 = LabelStore(torch.as_tensor(OBSERVED, dtype=torch.int64))
    assert store2['observed'].dtype == torch.int8
    assert torch.equal(store2['observed'], torch.from_numpy(OBSERVED))


def test_observed_validation():
    with pytest.raises(ValueError, match='-1'):
        LabelStore(np.array([[2, 0]], np.int8))
    with pytest.raises(ValueError, match=r'\(N, K\)'):
        LabelStore(np.zeros(3, np.int8))
    with pytest.raises(TypeError):
        LabelStore([[1, 0]])


def test_standard_fields_defaults():
    store = make_store()
    targets = store.add_field('targets')
    weights = store.add_field('weights')
    probs = store.add_field('probs')
    assert store.fields == {
        'observed': torch.int8,
        'targets': torch.float16,
        'weights': torch.float16,
        'probs': torch.float16
    }
    # targets start as the observed multi-hot (unknown -> 0)
    expected = torch.tensor(
        [[1, 0, 0], [0, 0, 1], [0, 0, 0], [1, 1, 0]], dtype=torch.float16)
    assert torch.equal(targets, expected)
    assert torch.equal(weights, torch.ones(4, 3, dtype=torch.float16))
    assert torch.equal(probs, torch.zeros(4, 3, dtype=torch.float16))


def test_add_field_custom_and_idempotent():
    store = make_store()
    q = store.add_field('qprobs', 'uint8', 7)
    assert q.dtype == torch.uint8 and int(q.sum()) == 7 * 12
    w = store.add_field('w32', torch.float32, 0.5)
    assert torch.equal(w, torch.full((4, 3), 0.5))
    # same dtype: returns the existing field untouched
    w[0, 0] = 3.
    assert store.add_field('w32', 'torch.float32', 0.) is w
    assert float(store['w32'][0, 0]) == 3.
    with pytest.raises(ValueError, match='already exists'):
        store.add_field('w32', torch.float16)
    with pytest.raises(TypeError, match='not a torch dtype'):
        store.add_field('x', 'float99')
    with pytest.raises(ValueError, match='identifier'):
        store.add_field('bad name')
    with pytest.raises(ValueError, match="'observed'"):
        store.add_field('x2', fill='whatever')
    assert 'w32' in store and 'nope' not in store


# ----------------------------------------------------------------------
# update / get
# ----------------------------------------------------------------------
def test_update_get_and_cast():
    store = make_store()
    store.add_field('probs')
    store.add_field('counts', torch.uint8, 0)
    store.update('probs', [2, 0],
                 np.array([[.5, .25, 1.], [.125, 0., .75]], np.float64))
    expected = torch.tensor(
        [[.125, 0., .75], [0, 0, 0], [.5, .25, 1.], [0, 0, 0]],
        dtype=torch.float16)
    assert torch.equal(store['probs'], expected)
    got = store.get('probs', torch.tensor([2, 2, 1]))
    assert got.dtype == torch.float16 and got.shape == (3, 3)
    assert torch.equal(got, expected[[2, 2, 1]])
    # scalar index, cast to uint8
    store.update('counts', 3, torch.tensor([[1., 2., 250.]]))
    assert store['counts'].dtype == torch.uint8
    assert store.get('counts', 3).tolist() == [[1, 2, 250]]
    # get returns a copy
    got[0, 0] = 9
    assert float(store['probs'][2, 0]) == .5
    # empty update is fine
    store.update('probs', [], torch.zeros(0, 3))
    assert store.num_pending('probs') == 2
    assert store.num_pending('counts') == 1 and store.num_pending() == 3


def test_cuda_indices_and_values_and_rows_for_the_consumer(device):
    """The store stays on the CPU (its size is the dataset's, like the
    dataset's labels); it takes indices and values on any device and
    hands rows to the consumer's device."""
    store = make_store()
    store.add_field('probs')
    store.add_field('w32', torch.float32, 1.)
    idx = torch.tensor([3, 1], device=device)
    values = torch.tensor([[.5, .25, 1.], [.125, 0., .75]], device=device)
    store.update('probs', idx, values)
    store.update('w32', idx[:1], values[:1] * 4)
    assert store['probs'].device.type == 'cpu'
    assert store.num_pending('probs') == 2
    rows = store.get('probs', idx)
    assert rows.device.type == 'cpu'
    torch.testing.assert_close(rows.float(), values.cpu())
    on_device = store.get('probs', idx, device=device)
    assert on_device.device.type == device.type
    assert on_device.dtype == torch.float16
    torch.testing.assert_close(on_device.float(), values)
    observed = store.get('observed', idx, device)
    assert observed.tolist() == [[1, 1, 0], [0, -1, 1]]
    store.set_all('w32', torch.full((4, 3), 2., device=device))
    assert store['w32'].device.type == 'cpu' and float(store['w32'].sum()) \
        == 24.
    with pytest.raises(ValueError, match='overflows'):
        store.update('probs', idx, torch.full((2, 3), 1e6, device=device))
    with pytest.raises(IndexError):
        store.get('probs', torch.tensor([4], device=device))
    store.sync()
    assert store.num_pending() == 0


def test_update_duplicate_indices_last_wins():
    store = make_store()
    store.add_field('probs', torch.float32)
    store.update('probs', [1, 3, 1, 1],
                 torch.tensor([[1., 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4]]))
    assert store['probs'][1].tolist() == [4, 4, 4]
    assert store['probs'][3].tolist() == [2, 2, 2]
    assert store.num_pending() == 2


def test_update_errors():
    store = make_store()
    store.add_field('targets')
    with pytest.raises(IndexError,
                       match=r"'targets'.*sample index 4 .*\[0, 4\)"):
        store.update('targets', [0, 4], torch.zeros(2, 3))
    with pytest.raises(IndexError, match='sample index -1'):
        store.get('targets', [-1])
    with pytest.raises(ValueError, match=r'shape \(2, 3\).*got \(2, 2\)'):
        store.update('targets', [0, 1], torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r'shape \(1, 3\)'):
        store.update('targets', [0], torch.zeros(3))
    with pytest.raises(ValueError, match='NaN'):
        store.update('targets', [0], torch.tensor([[0., float('nan'), 1.]]))
    with pytest.raises(ValueError, match='overflows float16'):
        store.update('targets', [0], torch.tensor([[0., 1e6, 1.]]))
    with pytest.raises(ValueError, match='read-only'):
        store.update('observed', [0], torch.zeros(1, 3))
    with pytest.raises(KeyError, match="no field 'probs'"):
        store.update('probs', [0], torch.zeros(1, 3))
    with pytest.raises(KeyError, match="no field 'probs'"):
        store.get('probs', [0])
    with pytest.raises(TypeError, match='integers'):
        store.get('targets', [0.5])
    # nothing was written by the failed calls
    assert store.num_pending() == 0
    assert torch.equal(store['targets'][0],
                       torch.tensor([1., 0., 0.], dtype=torch.float16))


def test_set_all_and_sync_single_process():
    store = make_store()
    store.add_field('weights')
    store.update('weights', [1], torch.zeros(1, 3))
    assert store.num_pending() == 1
    store.sync()  # not distributed: just clears the queue
    assert store.num_pending() == 0
    assert store['weights'][1].tolist() == [0, 0, 0]
    store.update('weights', [2], torch.zeros(1, 3))
    values = torch.arange(12, dtype=torch.float32).reshape(4, 3) / 4
    store.set_all('weights', values)
    assert store.num_pending() == 0
    assert torch.equal(store['weights'], values.half())
    # set_all creates a missing field (standard dtype or values' dtype)
    store.set_all('probs', values)
    assert store['probs'].dtype == torch.float16
    store.set_all('extra', values.double())
    assert store['extra'].dtype == torch.float64
    with pytest.raises(ValueError, match=r'shape \(4, 3\)'):
        store.set_all('weights', values[:2])
    with pytest.raises(ValueError, match='NaN'):
        store.set_all('weights', torch.full((4, 3), float('nan')))
    with pytest.raises(ValueError, match='read-only'):
        store.set_all('observed', torch.zeros(4, 3))


# ----------------------------------------------------------------------
# state dict and memory
# ----------------------------------------------------------------------
def test_state_dict_round_trip_through_torch_save():
    store = make_store()
    store.add_field('targets')
    store.add_field('flags', torch.bool, False)
    store.update('targets', [3], torch.tensor([[.5, .5, .25]]))
    store.update('flags', [0, 2], torch.tensor([[1, 0, 1], [0, 0, 1]]))
    state = store.state_dict()  # not distributed: pending synced first
    assert store.num_pending() == 0
    assert 'observed' not in state['fields']
    assert state['dtypes'] == {'targets': 'float16', 'flags': 'bool'}
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)

    other = make_store()
    other.add_field('targets')
    other.update('targets', [0], torch.zeros(1, 3))  # discarded by load
    other.load_state_dict(loaded)
    assert other.num_pending() == 0
    assert other.fields == store.fields
    expected_targets = torch.tensor(
        [[1, 0, 0], [0, 0, 1], [0, 0, 0], [.5, .5, .25]], dtype=torch.float16)
    assert torch.equal(other['targets'], expected_targets)
    assert other['flags'].tolist() == [[True, False, True],
                                       [False, False, False],
                                       [False, False, True],
                                       [False, False, False]]
    # the state is a copy
    state['fields']['targets'][0, 0] = 0
    assert float(store['targets'][0, 0]) == 1.


def test_load_state_dict_refuses_other_shapes():
    state = make_store().state_dict()
    with pytest.raises(ValueError, match=r'\(4, 3\).*\(4, 2\)'):
        LabelStore(OBSERVED[:, :2].copy()).load_state_dict(state)
    with pytest.raises(ValueError, match=r'\(4, 3\).*\(3, 3\)'):
        LabelStore(OBSERVED[:3].copy()).load_state_dict(state)


def test_load_state_dict_warns_on_other_labels_and_dtype():
    store = make_store()
    store.add_field('probs')
    state = store.state_dict()
    obs = OBSERVED.copy()
    obs[2, 2] = 1
    other = LabelStore(obs)
    other.add_field('probs', torch.float32)
    with pytest.warns(UserWarning) as record:
        other.load_state_dict(state)
    messages = ' '.join(str(w.message) for w in record)
    assert 'observed labels differ' in messages and 'casting' in messages
    assert other['probs'].dtype == torch.float32
    same = make_store()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        same.load_state_dict(state)


def test_nbytes_and_memory_report():
    store = make_store()
    assert store.nbytes() == 12
    store.add_field('targets')  # 12 labels x 2 B
    store.add_field('q', torch.uint8)  # 12 x 1 B
    assert store.nbytes() == 12 + 24 + 12
    store.update('targets', [0], torch.zeros(1, 3))  # + 4 B pending mask
    assert store.nbytes() == 52
    report = store.memory_report()
    for word in ('observed', 'targets', 'float16', 'uint8', '12 labels'):
        assert word in report
    assert 'pending=1' in repr(store)


# ----------------------------------------------------------------------
# distributed sync: 2 CPU processes, gloo
# ----------------------------------------------------------------------
# The workers run as ``python -c WORKER_SRC``: they load label_store.py by
# path, so they import torch + mmengine only (not mmpretrain), which keeps
# this test at a few seconds on 2 CPU cores.
WORKER_SRC = r"""
import importlib.util, sys
import numpy as np
import torch
import torch.distributed as tdist

rank, port, out_dir, path = int(sys.argv[1]), *sys.argv[2:5]
spec = importlib.util.spec_from_file_location('label_store', path)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)

tdist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                         rank=rank, world_size=2)
try:
    # 8 bytes per chunk: one float16 row (6 B) per collective
    store = mod.LabelStore(np.zeros((10, 3), np.int8), sync_chunk_bytes=8)
    store.add_field('probs')
    store.add_field('weights')  # never updated
    store.add_field('flags', torch.bool, False)
    store.add_field('counts', torch.uint8, 0)

    def rows(idx, base):
        return torch.tensor([[base + i, base + i + .5, -(base + i)]
                             for i in idx], dtype=torch.float32)

    if rank == 0:
        store.update('probs', [0, 1, 2, 5], rows([0, 1, 2, 5], 0.))
        store.update('probs', [2], rows([2], 100.))  # rewrites 2
        store.update('flags', [4], torch.tensor([[1, 0, 1]]))
    else:
        store.update('probs', [5, 6, 7, 8, 9, 3],
                     rows([5, 6, 7, 8, 9, 3], 10.))
        store.update('counts', [9, 0], torch.tensor([[1, 2, 3], [4, 5, 6]]))
    store.sync()
    pending_after = store.num_pending()
    store.sync()  # nothing pending anywhere
    # a second round with the default chunk size
    store.sync_chunk_bytes = 64 << 20
    if rank == 0:
        store.update('counts', [5], torch.tensor([[7, 7, 7]]))
    store.sync()
    # mismatched fields are reported on every rank, no hang
    if rank == 1:
        store.add_field('extra')
    try:
        store.sync()
        mismatch = ''
    except RuntimeError as e:
        mismatch = str(e)
    torch.save(dict(fields={n: store[n].clone() for n in
                            ('probs', 'weights', 'flags', 'counts')},
                    pending_after=pending_after, mismatch=mismatch),
               f'{out_dir}/rank{rank}.pth')
finally:
    tdist.destroy_process_group()
"""


def _expected_fields():
    """Hand-built result of WORKER_SRC: rank 0 wrote rows 0, 1, 2 (twice,
    the second write with base 100) and 5; rank 1 wrote 5, 6, 7, 8, 9, 3
    with base 10 and wins the shared row 5."""
    probs = torch.zeros(10, 3)
    for i, base in [(0, 0.), (1, 0.), (2, 100.), (3, 10.), (5, 10.),
                    (6, 10.), (7, 10.), (8, 10.), (9, 10.)]:
        probs[i] = torch.tensor([base + i, base + i + .5, -(base + i)])
    flags = torch.zeros(10, 3, dtype=torch.bool)
    flags[4] = torch.tensor([True, False, True])
    counts = torch.zeros(10, 3, dtype=torch.uint8)
    counts[9] = torch.tensor([1, 2, 3])
    counts[0] = torch.tensor([4, 5, 6])
    counts[5] = torch.tensor([7, 7, 7])  # second round
    return dict(
        probs=probs.half(),
        flags=flags,
        counts=counts,
        weights=torch.ones(10, 3, dtype=torch.float16))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_sync_two_processes_gloo(tmp_path):
    import mlimb_mm.structures.label_store as label_store
    port = str(_free_port())
    procs = [
        subprocess.Popen([
            sys.executable, '-c', WORKER_SRC,
            str(rank), port,
            str(tmp_path), label_store.__file__
        ],
                         stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT) for rank in range(2)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=120)[0].decode())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], '\n'.join(logs)

    results = [
        torch.load(tmp_path / f'rank{r}.pth', weights_only=True)
        for r in range(2)
    ]
    expected = _expected_fields()
    for res in results:
        assert res['pending_after'] == 0
        assert 'different fields' in res['mismatch']
        for name, value in expected.items():
            assert res['fields'][name].dtype == value.dtype, name
            assert torch.equal(res['fields'][name], value), (
                name, res['fields'][name], value)
    for name in expected:
        assert torch.equal(results[0]['fields'][name],
                           results[1]['fields'][name])
