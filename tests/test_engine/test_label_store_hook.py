import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmpretrain.registry import HOOKS
from mmpretrain.structures import DataSample

import mlimb_mm.engine.hooks.label_store_hook as hook_module
import mlimb_mm.engine.hooks.stateful_hook as stateful_module
from mlimb_mm.engine.hooks import LabelStoreHook
from mlimb_mm.engine.hooks.label_store_hook import (get_label_store,
                                                    sync_label_store)
from mlimb_mm.structures import LabelStore

OBSERVED = np.array([
    [1, 0, -1],
    [0, -1, 1],
    [-1, -1, -1],
    [1, 1, 0],
    [0, 0, 1],
], dtype=np.int8)


class FakeDataset:

    def __init__(self, observed=OBSERVED):
        self.observed = observed.copy()

    def __len__(self):
        return len(self.observed)

    def get_tristate_labels(self):
        return self.observed


class Wrapper:
    """Like mmengine's RepeatDataset: samples carry the inner index."""

    def __init__(self, dataset):
        self.dataset = dataset


class NoLabels:

    def __len__(self):
        return 3


def make_runner(hooks, dataset=None, resume=False, it=0):
    return SimpleNamespace(
        train_dataloader=SimpleNamespace(dataset=dataset or FakeDataset()),
        hooks=hooks,
        _resume=resume,
        iter=it,
        epoch=0)


def make_batch(indices):
    samples = []
    for i in indices:
        s = DataSample()
        s.set_metainfo({'sample_idx': i})
        s.set_gt_score(torch.from_numpy((OBSERVED[i] == 1).astype(
            np.float32)))
        samples.append(s)
    return dict(inputs=[torch.zeros(3, 2, 2)] * len(indices),
                data_samples=samples)


@pytest.fixture
def log_calls(monkeypatch):
    calls = []
    for module in (hook_module, stateful_module):
        monkeypatch.setattr(module, 'print_log',
                            lambda msg, *args, **kwargs: calls.append(msg))
    return calls


def test_registered_and_priority():
    hook = HOOKS.build(
        dict(type='LabelStoreHook', fields=['targets'], inject=None))
    assert isinstance(hook, LabelStoreHook)
    assert hook.priority == 'ABOVE_NORMAL'
    with pytest.raises(TypeError, match='fields'):
        LabelStoreHook(fields=dict(targets=dict(dtyp='float16')))
    with pytest.raises(TypeError, match='inject'):
        LabelStoreHook(inject=['targets'])
    with pytest.raises(ValueError, match='sync_interval'):
        LabelStoreHook(sync_interval=0)


def test_get_label_store_needs_the_hook():
    runner = make_runner(hooks=[object()])
    with pytest.raises(RuntimeError,
                       match=r"dict\(type='LabelStoreHook'\).*custom_hooks"):
        get_label_store(runner)
    with pytest.raises(RuntimeError, match='custom_hooks'):
        sync_label_store(runner)
    runner.hooks = [LabelStoreHook(), LabelStoreHook()]
    with pytest.raises(RuntimeError, match='keep one'):
        get_label_store(runner)


def test_dataset_without_tristate_labels():
    hook = LabelStoreHook()
    runner = make_runner([hook], dataset=NoLabels())
    with pytest.raises(TypeError, match='NoLabels.*get_tristate_labels'):
        hook.before_train(runner)


def test_creation_with_fields(log_calls):
    hook = LabelStoreHook(
        fields=dict(
            targets=dict(),
            weights=dict(dtype='float32', fill=0.5),
            qprobs=dict(dtype='uint8', fill=3)))
    runner = make_runner([object(), hook], dataset=Wrapper(FakeDataset()))
    hook.before_train(runner)
    store = hook.store
    assert isinstance(store, LabelStore)
    assert get_label_store(runner) is store  # same store, not a new one
    assert store.fields == {
        'observed': torch.int8,
        'targets': torch.float16,
        'weights': torch.float32,
        'qprobs': torch.uint8
    }
    assert torch.equal(store['observed'], torch.from_numpy(OBSERVED))
    assert torch.equal(store['targets'],
                       torch.from_numpy(OBSERVED == 1).half())
    assert torch.equal(store['weights'], torch.full((5, 3), .5))
    assert int(store['qprobs'].sum()) == 3 * 15
    assert any('LabelStore: 5 samples x 3 classes' in m for m in log_calls)
    # before_train again keeps the store
    hook.before_train(runner)
    assert hook.store is store


def test_get_label_store_creates_lazily():
    hook = LabelStoreHook(fields=['probs'])
    runner = make_runner([hook])
    store = get_label_store(runner)
    assert hook.store is store and 'probs' in store


def test_inject_into_data_samples():
    hook = LabelStoreHook(
        fields=dict(targets=dict(), weights=dict()),
        inject=dict(
            targets='gt_score', weights='label_weight',
            observed='tristate'))
    runner = make_runner([hook])
    hook.before_train(runner)
    store = hook.store
    store.update('targets', [1, 3],
                 torch.tensor([[.25, .5, 1.], [0., .75, .125]]))
    store.update('weights', [3], torch.tensor([[0., 2., 1.]]))

    batch = make_batch([3, 1, 3, 0])
    hook.before_train_iter(runner, 0, batch)
    samples = batch['data_samples']
    expected_score = [[0., .75, .125], [.25, .5, 1.], [0., .75, .125],
                      [1., 0., 0.]]
    expected_weight = [[0., 2., 1.], [1., 1., 1.], [0., 2., 1.],
                       [1., 1., 1.]]
    for s, score, weight, i in zip(samples, expected_score, expected_weight,
                                   [3, 1, 3, 0]):
        assert s.gt_score.dtype == torch.float32
        assert s.gt_score.tolist() == score
        assert s.label_weight.dtype == torch.float32
        assert s.label_weight.tolist() == weight
        assert s.tristate.dtype == torch.int8
        assert s.tristate.tolist() == OBSERVED[i].tolist()
    # rows do not alias the store
    samples[0].gt_score[0] = 9.
    assert float(store['targets'][3, 0]) == 0.


def test_inject_errors_and_no_op(log_calls):
    hook = LabelStoreHook(inject=dict(probs='gt_score'))
    runner = make_runner([hook])
    hook.before_train(runner)
    assert any('do not exist yet' in m for m in log_calls)
    with pytest.raises(KeyError, match="no field 'probs'"):
        hook.before_train_iter(runner, 0, make_batch([0]))
    hook.store.add_field('probs')
    batch = make_batch([0])
    del batch['data_samples'][0].sample_idx
    with pytest.raises(KeyError, match='sample_idx'):
        hook.before_train_iter(runner, 0, batch)
    # no inject: data samples are left untouched
    plain = LabelStoreHook()
    runner = make_runner([plain])
    batch = make_batch([1])
    plain.before_train_iter(runner, 0, batch)
    assert batch['data_samples'][0].gt_score.tolist() == [0., 0., 1.]
    assert plain.store is None  # nothing forced its creation


def test_sync_at_epoch_end_and_interval():
    hook = LabelStoreHook(fields=['probs'], sync_interval=2)
    runner = make_runner([hook])
    store = get_label_store(runner)
    store.update('probs', [0], torch.ones(1, 3))
    runner.iter = 0  # (0 + 1) % 2 != 0
    hook.after_train_iter(runner, 0, None, None)
    assert store.num_pending() == 1
    runner.iter = 1
    hook.after_train_iter(runner, 1, None, None)
    assert store.num_pending() == 0
    store.update('probs', [1], torch.ones(1, 3))
    hook.after_train_epoch(runner)
    assert store.num_pending() == 0
    store.update('probs', [2], torch.ones(1, 3))
    sync_label_store(runner)
    assert store.num_pending() == 0
    assert store['probs'][:3].tolist() == [[1., 1., 1.]] * 3


def _roundtrip(checkpoint):
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _trained_checkpoint():
    hook = LabelStoreHook(fields=['targets'])
    runner = make_runner([hook])
    hook.before_train(runner)
    hook.store.update('targets', [2, 4], torch.tensor([[.5, .5, .5],
                                                       [1., 0., .25]]))
    hook.store.add_field('probs', 'float32', .125)  # added by a method
    checkpoint = dict(meta=dict(epoch=1))
    hook.before_save_checkpoint(runner, checkpoint)  # pending: auto-synced
    assert hook.store.num_pending() == 0
    assert set(checkpoint['label_store']['fields']) == {'targets', 'probs'}
    return _roundtrip(checkpoint), hook.store


def test_checkpoint_resume_before_creation():
    """Runner.train(): load_or_resume() runs before before_train."""
    checkpoint, saved = _trained_checkpoint()
    hook = LabelStoreHook(fields=['targets'])
    runner = make_runner([hook], resume=True)
    hook.after_load_checkpoint(runner, checkpoint)
    assert hook.store is None
    # saving before creation keeps the resumed state
    again = {}
    hook.before_save_checkpoint(runner, again)
    assert again['label_store'] is checkpoint['label_store']
    hook.before_train(runner)
    store = hook.store
    expected = torch.tensor(
        [[1, 0, 0], [0, 0, 1], [.5, .5, .5], [1, 1, 0], [1., 0., .25]],
        dtype=torch.float16)
    assert torch.equal(store['targets'], expected)
    assert torch.equal(store['probs'], torch.full((5, 3), .125))
    assert store.fields == saved.fields
    assert hook._resumed_state is None


def test_checkpoint_resume_after_creation():
    checkpoint, saved = _trained_checkpoint()
    hook = LabelStoreHook(fields=['targets'])
    runner = make_runner([hook], resume=True)
    store = get_label_store(runner)
    hook.after_load_checkpoint(runner, checkpoint)
    assert hook.store is store
    assert torch.equal(store['targets'], saved['targets'])
    assert torch.equal(store['probs'], saved['probs'])


def test_load_from_without_resume_is_ignored(log_calls):
    checkpoint, _ = _trained_checkpoint()
    hook = LabelStoreHook(fields=['targets'])
    runner = make_runner([hook], resume=False)
    hook.after_load_checkpoint(runner, checkpoint)
    hook.before_train(runner)
    assert torch.equal(hook.store['targets'],
                       torch.from_numpy(OBSERVED == 1).half())
    assert 'probs' not in hook.store
    assert not any('label_store' in m for m in log_calls)


def test_resume_without_label_store_warns(log_calls):
    hook = LabelStoreHook()
    runner = make_runner([hook], resume=True)
    hook.after_load_checkpoint(runner, dict(meta={}))
    assert any('has no `label_store`' in m for m in log_calls)
    hook.before_train(runner)
    assert hook.store.fields == {'observed': torch.int8}


def test_resume_with_other_dataset_is_refused():
    checkpoint, _ = _trained_checkpoint()
    hook = LabelStoreHook()
    runner = make_runner([hook],
                         dataset=FakeDataset(OBSERVED[:4]),
                         resume=True)
    hook.after_load_checkpoint(runner, checkpoint)
    with pytest.raises(ValueError, match=r'\(5, 3\).*\(4, 3\)'):
        hook.before_train(runner)


def test_save_without_store_adds_nothing():
    hook = LabelStoreHook()
    checkpoint = {}
    hook.before_save_checkpoint(make_runner([hook]), checkpoint)
    assert 'label_store' not in checkpoint


# ----------------------------------------------------------------------
# fields and injections declared by the method hooks
# ----------------------------------------------------------------------
class Declares:
    """A method hook that declares what it needs from the store."""

    def __init__(self, *requests):
        self.requests = requests

    def label_store_fields(self):
        return list(self.requests)


def test_declared_fields_are_created_and_injected_in_order():
    from mlimb_mm.engine.hooks import StoreField
    refine = Declares(StoreField('targets', inject='gt_score'),
                      StoreField('weights', inject='label_weight'))
    mask = Declares(StoreField('mask', 'uint8', 1, 'label_weight',
                               'multiply'))
    hook = LabelStoreHook()  # nothing in the config
    # the multiplying hook comes first in the run: replacements still go
    # first, so the mask multiplies the refined weight
    runner = make_runner([hook, mask, refine])
    hook.before_train(runner)
    store = hook.store
    assert store.fields == {'observed': torch.int8, 'mask': torch.uint8,
                            'targets': torch.float16,
                            'weights': torch.float16}
    assert [(r.name, r.mode) for r in hook.injections] == [
        ('targets', 'replace'), ('weights', 'replace'),
        ('mask', 'multiply')]
    store.update('weights', [1], torch.tensor([[0.5, 2., 1.]]))
    store['mask'][1] = torch.tensor([1, 0, 1], dtype=torch.uint8)
    batch = make_batch([1, 0])
    hook.before_train_iter(runner, 0, batch)
    first, second = batch['data_samples']
    assert first.label_weight.tolist() == [0.5, 0., 1.]
    assert second.label_weight.tolist() == [1., 1., 1.]
    assert first.gt_score.tolist() == [0., 0., 1.]


def test_multiplied_field_creates_the_weight_when_absent():
    from mlimb_mm.engine.hooks import StoreField
    mask = Declares(StoreField('mask', 'uint8', 1, 'label_weight',
                               'multiply'))
    hook = LabelStoreHook()
    runner = make_runner([hook, mask])
    hook.before_train(runner)
    hook.store['mask'][3] = torch.tensor([0, 1, 1], dtype=torch.uint8)
    batch = make_batch([3])
    hook.before_train_iter(runner, 0, batch)
    weight = batch['data_samples'][0].label_weight
    assert weight.dtype == torch.float32 and weight.tolist() == [0., 1., 1.]


def test_conflicting_declarations_are_refused():
    from mlimb_mm.engine.hooks import StoreField
    a = Declares(StoreField('targets', inject='gt_score'))
    b = Declares(StoreField('pseudo', inject='gt_score'))
    with pytest.raises(ValueError, match="'gt_score'.*only one field"):
        LabelStoreHook().before_train(make_runner([a, b]))
    c = Declares(StoreField('probs', 'float32', 0.))
    d = Declares(StoreField('probs', 'float16', 0.))
    with pytest.raises(ValueError, match="field 'probs'"):
        LabelStoreHook().before_train(make_runner([c, d]))
    e = Declares(StoreField('mask', inject='label_weight', mode='add'))
    with pytest.raises(ValueError, match="inject mode 'add'"):
        LabelStoreHook().before_train(make_runner([e]))
    # the same request from two hooks (and from the config) is one
    same = Declares(StoreField('targets', inject='gt_score'))
    hook = LabelStoreHook(fields=['targets'], inject=dict(targets='gt_score'))
    hook.before_train(make_runner([hook, a, same]))
    assert len(hook.injections) == 1


def test_injected_rows_reach_a_model_on_the_device(device):
    """The store stays on the CPU and injects CPU rows before the data
    preprocessor; fields already on the device (multiply mode) keep their
    device; the preprocessor and the head on the device consume the rows:
    the loss is the CPU loss."""
    from mmpretrain.registry import MODELS

    from mlimb_mm.engine.hooks import StoreField
    mask = Declares(StoreField('mask', 'uint8', 1, 'label_weight',
                               'multiply'))
    hook = LabelStoreHook(fields=['targets'], inject=dict(targets='gt_score'))
    runner = make_runner([hook, mask])
    hook.before_train(runner)
    hook.store.update('targets', [1, 3],
                      torch.tensor([[.25, .5, 1.], [0., .75, .125]]))
    hook.store['mask'][3] = torch.tensor([0, 1, 1], dtype=torch.uint8)
    torch.manual_seed(0)
    head = MODELS.build(dict(type='TriStateLinearClsHead', num_classes=3,
                             in_channels=3))
    feats = torch.randn(3, 3)
    losses = {}
    for where in ('cpu', device):
        batch = make_batch([3, 1, 4])
        # weights something already put on the device
        for sample, value in zip(batch['data_samples'], (1., 1., 2.)):
            sample.set_field(torch.tensor([value, 1., 1.], device=where),
                             'label_weight')
        hook.before_train_iter(runner, 0, batch)
        samples = batch['data_samples']
        assert samples[0].gt_score.device.type == 'cpu'
        assert samples[0].label_weight.tolist() == [0., 1., 1.]
        assert samples[2].label_weight.device.type == \
            torch.device(where).type
        pre = MODELS.build(dict(type='ClsDataPreprocessor',
                                num_classes=3)).to(where)
        data = pre(batch, training=True)
        loss = head.to(where).loss((feats.to(where), ),
                                   data['data_samples'])['loss']
        assert loss.device.type == torch.device(where).type
        losses[str(where)] = loss.item()
    assert losses[str(device)] == pytest.approx(losses['cpu'], rel=1e-6)
