"""TrainingSetPass: per-sample predictions, view means and per-label losses
of the whole training set, against a model computed by hand."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch.utils.data import DataLoader

import mlimb_mm  # noqa: F401
from mlimb_mm.engine import TrainingSetPass
from mlimb_mm.engine.training_set_pass import (KeyedSampler, SeededSamples,
                                               keeping_global_rng)

WEIGHT = torch.tensor([[0.02, -0.01], [-0.03, 0.015], [0.01, 0.01]])


class MeanPixelModel(torch.nn.Module):
    """logits = per-channel mean pixel @ WEIGHT; refuses forwards of more
    than ``max_batch`` images like a GPU out of memory."""

    def __init__(self, max_batch=None):
        super().__init__()
        self.data_preprocessor = MODELS.build(
            dict(type='ClsDataPreprocessor', num_classes=2))
        self.register_buffer('weight', WEIGHT.clone())
        self.max_batch = max_batch
        self.batches = []
        self.devices = set()

    def to(self, *args, **kwargs):
        # as mmengine's BaseModel: the data preprocessor moves the batches
        # to the model's device
        self.data_preprocessor.to(*args, **kwargs)
        return super().to(*args, **kwargs)

    def forward(self, x, mode='tensor'):
        assert mode == 'tensor' and not self.training
        assert not torch.is_grad_enabled()
        if self.max_batch is not None and x.size(0) > self.max_batch:
            raise torch.cuda.OutOfMemoryError('too large')
        self.batches.append(x.size(0))
        self.devices.add(x.device.type)
        return x.float().mean((2, 3)) @ self.weight


def image(value):
    return torch.full((3, 2, 2), float(value), dtype=torch.uint8)


def logits_of(value):
    return torch.full((1, 3), float(value)) @ WEIGHT


def batches(indices_per_batch, num_views):
    """Loaded batches as MultiView + pseudo_collate give them: one list
    per view (plain image of sample i: value 10 i, view v: 10 i + v)."""
    out = []
    for indices in indices_per_batch:
        samples = [DataSample(metainfo=dict(sample_idx=i)) for i in indices]
        for s, i in zip(samples, indices):
            s.set_field(torch.tensor([1, i % 2 * 2 - 1], dtype=torch.int8),
                        'gt_tristate')
        views = [[image(10 * i + v) for i in indices]
                 for v in range(1 + num_views)]
        out.append(dict(inputs=views if num_views else views[0],
                        data_samples=samples))
    return out


def run_pass(model, loaded, num_views=2, freeze_model=False, **kwargs):
    runner = SimpleNamespace(model=model)
    pass_ = TrainingSetPass(num_views=num_views,
                            freeze_model=freeze_model,
                            view_transforms=[dict(type='RandAugment')]
                            if num_views else None,
                            pipeline=[dict(type='PackMultiLabelInputs')],
                            **kwargs)
    pass_._loader = loaded  # what build_dataloader would give
    targets = torch.tensor([[1., 0.], [0., 1.], [1., 1.], [0., 0.]])
    observed = torch.tensor([[1, -1], [1, 1], [1, -1], [1, 1]],
                            dtype=torch.int8)
    return pass_, pass_.run(runner, seed=0, num_samples=4, targets=targets,
                            observed=observed), targets


def test_predictions_views_and_losses_by_hand(device):
    model = MeanPixelModel().to(device)
    model.train()
    # sample 2 is loaded twice (a padded shard): its results are averaged
    _, out, targets = run_pass(model, batches([[0, 1], [2, 3, 2]], 2),
                               max_forward=9)
    assert model.training  # restored
    # the model ran on its device; the results are gathered on the CPU
    assert model.devices == {device.type}
    assert all(t.device.type == 'cpu' for t in out.values())
    # the plain images and views of a loaded batch go through together
    assert model.batches == [6, 9]
    for i in range(4):
        plain = logits_of(10 * i)
        views = torch.cat([logits_of(10 * i + v) for v in (1, 2)])
        torch.testing.assert_close(out['probs'][i], plain.sigmoid()[0])
        torch.testing.assert_close(out['view_probs'][i],
                                   views.sigmoid().mean(0))
        torch.testing.assert_close(
            out['losses'][i],
            F.binary_cross_entropy_with_logits(plain[0], targets[i],
                                               reduction='none'))


def test_out_of_memory_halves_the_forward_chunk():
    reference = run_pass(MeanPixelModel(), batches([[0, 1, 2, 3]], 2))[1]
    model = MeanPixelModel(max_batch=5)
    pass_, out, _ = run_pass(model, batches([[0, 1, 2, 3]], 2),
                             max_forward=12)
    assert pass_.max_forward == 3 and model.batches == [3, 3, 3, 3]
    for key in ('probs', 'view_probs', 'losses'):
        torch.testing.assert_close(out[key], reference[key])
    with pytest.raises(ValueError, match='max_forward'):
        TrainingSetPass(max_forward=0)


def test_tensor_views_on_the_device_are_the_cpu_views(device):
    """Without view transforms the views are made in tensor space from the
    preprocessed batch, with a CPU generator: the same views on a GPU (one
    forward of the batch and its views there) as on the CPU."""
    outs = {}
    for where in ('cpu', device):
        model = MeanPixelModel().to(where)
        runner = SimpleNamespace(model=model)
        pass_ = TrainingSetPass(num_views=2, freeze_model=False)
        pass_._loader = batches([[0, 1, 2, 3]], 0)
        outs[str(where)] = pass_.run(runner, seed=3, num_samples=4)
        assert model.batches == ([4, 4, 4] if torch.device(where).type ==
                                 'cpu' else [12])
    for key in ('probs', 'view_probs'):
        torch.testing.assert_close(outs[str(device)][key], outs['cpu'][key])
    assert not torch.equal(outs['cpu']['probs'], outs['cpu']['view_probs'])


def test_default_chunks():
    """On the CPU a forward takes the loaded batch's size (moderate batches
    run faster there); on a GPU all of its images at once."""
    model = MeanPixelModel()
    run_pass(model, batches([[0, 1, 2, 3]], 2))
    assert model.batches == [4, 4, 4]


def test_plain_pass_and_the_errors():
    _, out, _ = run_pass(MeanPixelModel(), batches([[0, 1, 2, 3]], 0),
                         num_views=0)
    assert out['view_probs'] is None
    torch.testing.assert_close(out['probs'][3], logits_of(30).sigmoid()[0])
    with pytest.raises(RuntimeError, match='missed 1 of 4'):
        run_pass(MeanPixelModel(), batches([[0, 1, 2]], 2))
    loaded = batches([[0, 1, 2, 3]], 2)
    loaded[0]['data_samples'][1].gt_tristate[1] = 0
    with pytest.raises(RuntimeError, match='disagrees with the label store'):
        run_pass(MeanPixelModel(), loaded)
    with pytest.raises(ValueError, match='expects 3 images per sample'):
        run_pass(MeanPixelModel(), batches([[0, 1, 2, 3]], 1))
    with pytest.raises(ValueError, match='pass_pipeline'):
        TrainingSetPass(num_views=2, view_transforms=[dict(type='x')])


class ConvBNModel(MeanPixelModel):
    """A small conv / batch-norm classifier (``mode='tensor'`` only).
    ``untraceable='refuses'``: its forward fails under ``torch.jit.trace``;
    ``'python_state'``: its logits depend on a Python counter, which a
    trace freezes into a constant."""

    def __init__(self, untraceable=None):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(), torch.nn.Linear(8, 2))
        # running statistics away from (0, 1): folding them matters
        self.net[1].running_mean.uniform_(-1, 1)
        self.net[1].running_var.uniform_(0.5, 2)
        self.untraceable = untraceable
        self.eager_calls = 0

    def forward(self, x, mode='tensor'):
        if self.untraceable == 'refuses' and torch.jit.is_tracing():
            raise NotImplementedError('no tracing')
        self.eager_calls += 1
        logits = self.net(x.float())
        if self.untraceable == 'python_state':
            logits = logits + float(self.eager_calls % 2)
        return logits


def test_frozen_model_gives_the_eager_results(device):
    """By default the pass runs a frozen trace of the model (batch norm
    folded); its results are the eager model's, every pass freezes the
    current weights (the trace is kept while it holds the model's tensors)
    and the model is left in training mode."""
    loaded = batches([[0, 1], [2, 3]], 2)
    model = ConvBNModel().to(device).train()
    pass_, eager, _ = run_pass(model, loaded)
    calls = model.eager_calls
    pass_, frozen, _ = run_pass(model, loaded, freeze_model=True)
    assert pass_.freeze_model and model.training
    # one trace and the eager check on the first pass, then frozen only
    assert model.eager_calls - calls == 2
    for key in ('probs', 'view_probs', 'losses'):
        torch.testing.assert_close(frozen[key], eager[key], rtol=1e-4,
                                   atol=1e-5)
    with torch.no_grad():
        model.net[-1].bias += 1.0
    again = pass_.run(SimpleNamespace(model=model), seed=0, num_samples=4)
    # the trace holds the model's tensors: frozen again, it sees the new
    # weights without being traced again
    assert model.eager_calls - calls == 2
    assert (again['probs'] > frozen['probs']).all()
    # a parameter replaced by another tensor: traced again
    model.net[-1].bias = torch.nn.Parameter(model.net[-1].bias + 1.0)
    third = pass_.run(SimpleNamespace(model=model), seed=0, num_samples=4)
    assert model.eager_calls - calls == 3
    assert (third['probs'] > again['probs']).all()


@pytest.mark.parametrize('untraceable', ['refuses', 'python_state'])
def test_untraceable_model_runs_eagerly(untraceable):
    """A model that cannot be traced, or whose trace does not give its
    eager logits, runs eagerly, with a warning, and gives the eager
    results."""
    eager_model, model = ConvBNModel(), ConvBNModel(untraceable)
    reference = run_pass(eager_model, batches([[0, 1, 2, 3]], 0),
                         num_views=0)[1]
    logs = []
    with pytest.MonkeyPatch.context() as patch:
        import mlimb_mm.engine.training_set_pass as module
        patch.setattr(module, 'print_log',
                      lambda msg, *args, **kwargs: logs.append(msg))
        pass_, out, _ = run_pass(model, batches([[0, 1, 2, 3]], 0),
                                 num_views=0, freeze_model=True)
    assert not pass_.freeze_model
    assert len(logs) == 1 and 'runs the eager model' in logs[0]
    if untraceable == 'refuses':
        torch.testing.assert_close(out['probs'], reference['probs'])


class NoisySamples(torch.utils.data.Dataset):
    """Sample i: ``i`` plus noise from the global numpy and torch
    generators, as random transforms draw it."""

    def __len__(self):
        return 6

    def __getitem__(self, index):
        return index + np.random.rand() + torch.rand(()).item()


def test_samples_seeded_by_pass_seed_and_index():
    """A sample's random transforms depend on the pass seed and its index
    only: the same in any order, batch size and number of (persistent)
    workers; another pass seed draws others; the main process's generators
    are left as they were."""
    def load(seed, num_workers, batch_size, order=range(6)):
        sampler = KeyedSampler(list(order))
        loader = DataLoader(SeededSamples(NoisySamples()), sampler=sampler,
                            batch_size=batch_size, num_workers=num_workers,
                            persistent_workers=num_workers > 0)
        out = {}
        for s in seed:  # several passes over one (persistent) loader
            sampler.seed = s
            values = torch.cat(list(keeping_global_rng(loader))).tolist()
            out[s] = dict(zip(order, values))
        return out

    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    main = load([0, 1], 0, 2)
    assert torch.equal(torch.rand(1), before)
    assert load([0, 1], 1, 4) == main
    assert load([1], 0, 3, order=[5, 3, 1, 0, 2, 4])[1] == main[1]
    assert all(main[0][i] != main[1][i] for i in range(6))
    assert all(i <= main[0][i] < i + 2 for i in range(6))
