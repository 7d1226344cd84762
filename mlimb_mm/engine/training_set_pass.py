"""One pass of the model over the whole training set, for methods that
need every sample's prediction or loss at an epoch end (BalanceMix's GMMs
and re-labelling views, pseudo labels, label correction)."""
import copy
import logging
import random
import warnings
from functools import partial
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine import dist
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch.utils.data import DataLoader, Dataset, Sampler

from .hooks.hook_utils import derive_seed, sample_indices

__all__ = ['TrainingSetPass', 'tensor_view_augment']


class TrainingSetPass:
    """Per-sample predictions (and per-label losses) of the whole training
    set, without autograd, gathered on every rank.

    The dataloader is the run's ``train_dataloader`` config with a
    non-shuffled ``DefaultSampler`` (each rank a disjoint shard),
    persistent workers and, optionally, another ``pipeline`` for the
    innermost dataset; each sample's random transforms are seeded by the
    pass seed and its index (:class:`SeededSamples`), so a resumed run, and
    any number of workers or ranks, make the same views. With ``num_views``
    augmented views each image is loaded once and its plain image and views
    (``MultiView``) go through the model together; on a GPU they run in the
    largest chunk that fits (halved after a CUDA out-of-memory error). The
    model runs in eval mode under ``torch.no_grad()``, by default as a
    frozen TorchScript trace (``torch.jit.freeze`` +
    ``optimize_for_inference``: batch norms folded into the convolutions)
    of the current weights, made from one trace kept while it holds the
    model's tensors and checked against the eager model once; a model that
    cannot be traced runs eagerly. The results are summed over
    ranks, so every rank holds all of them. Cost per pass: ``1 +
    num_views`` forward passes per training image, no backward.

    Args:
        pipeline (list, optional): Pipeline of the innermost training
            dataset during the pass (e.g. the test pipeline, ending with
            the packing transform); the training pipeline when None.
        num_views (int): Augmented views per image. Defaults to 0.
        view_transforms (list, optional): Transforms of each view (e.g.
            ``[dict(type='RandAugment', ...)]``), inserted before the
            packing transform of ``pipeline``. When None, views are
            :func:`tensor_view_augment` of the preprocessed batch.
        batch_size (int, optional): Images per loaded batch. Defaults to
            the training dataloader's.
        num_workers (int, optional): Defaults to the training
            dataloader's.
        max_forward (int, optional): Images per forward at most (views
            included). Defaults to None: the loaded batch with its views on
            a GPU (halved on out-of-memory), the loaded batch on the CPU.
        tensor_view_cfg (dict, optional): :func:`tensor_view_augment`
            arguments when views are made in tensor space.
        freeze_model (bool): Run a frozen trace of the model (see above).
            Defaults to True.
        who (str): The component named in errors.
    """

    def __init__(self,
                 pipeline: Optional[Sequence[dict]] = None,
                 num_views: int = 0,
                 view_transforms: Optional[Sequence[dict]] = None,
                 batch_size: Optional[int] = None,
                 num_workers: Optional[int] = None,
                 max_forward: Optional[int] = None,
                 tensor_view_cfg: Optional[dict] = None,
                 freeze_model: bool = True,
                 who: str = 'TrainingSetPass'):
        if int(num_views) < 0:
            raise ValueError(f'{who}: num_views must be >= 0, got '
                             f'{num_views}.')
        if view_transforms is not None and not pipeline:
            raise ValueError(
                f'{who}: view_transforms need pass_pipeline (the '
                'non-augmented pipeline, ending with its packing transform, '
                'that the views are made from).')
        if max_forward is not None and int(max_forward) < 1:
            raise ValueError(f'{who}: max_forward must be >= 1, got '
                             f'{max_forward}.')
        self.pipeline = None if pipeline is None else list(pipeline)
        self.num_views = int(num_views)
        self.view_transforms = None if view_transforms is None else list(
            view_transforms)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.max_forward = None if max_forward is None else int(max_forward)
        self.tensor_view_cfg = dict(tensor_view_cfg or {})
        self.freeze_model = bool(freeze_model)
        self.who = who
        self._loader = None
        self._frozen_checked = False
        self._traced = None  # (model key, trace) reused by later passes

    def build_dataloader(self, runner):
        """The pass's dataloader (built once)."""
        if self._loader is not None:
            return self._loader
        from mmengine.runner import Runner
        cfg = getattr(runner, 'cfg', None)
        if cfg is None or 'train_dataloader' not in cfg:
            raise RuntimeError(f'{self.who}: the runner has no '
                               'train_dataloader config to build the pass '
                               'over the training set from.')
        loader_cfg = dict(copy.deepcopy(cfg['train_dataloader']))
        loader_cfg['sampler'] = dict(type='DefaultSampler', shuffle=False,
                                     round_up=False)
        loader_cfg.pop('batch_sampler', None)
        if self.batch_size is not None:
            loader_cfg['batch_size'] = int(self.batch_size)
        if self.num_workers is not None:
            loader_cfg['num_workers'] = int(self.num_workers)
        loader_cfg['persistent_workers'] = False  # made persistent below
        loader_cfg['drop_last'] = False
        pipeline = copy.deepcopy(self.pipeline)
        if self.view_transforms is not None and self.num_views:
            pipeline = with_views(pipeline, self.num_views,
                                  copy.deepcopy(self.view_transforms),
                                  self.who)
        if pipeline is not None:
            loader_cfg['dataset'] = copy.deepcopy(loader_cfg['dataset'])
            set_innermost_pipeline(loader_cfg['dataset'], pipeline, self.who)
        built = Runner.build_dataloader(loader_cfg)
        # each sample seeded by (pass seed, sample): persistent workers,
        # and the same views whatever the worker, batch or rank
        self._loader = DataLoader(
            SeededSamples(built.dataset),
            batch_size=built.batch_size,
            sampler=KeyedSampler(built.sampler),
            num_workers=built.num_workers,
            collate_fn=built.collate_fn,
            pin_memory=built.pin_memory,
            persistent_workers=built.num_workers > 0)
        return self._loader

    @torch.no_grad()
    def run(self,
            runner,
            seed: int,
            num_samples: int,
            targets: Optional[torch.Tensor] = None,
            observed: Optional[torch.Tensor] = None
            ) -> Dict[str, Optional[torch.Tensor]]:
        """Run the pass (a collective when distributed).

        Args:
            runner (Runner): The training runner.
            seed (int): Seed of this pass's random views and transforms
                (mixed with the sample index, and with the rank for the
                tensor-space views).
            num_samples (int): N, the training set's size.
            targets (Tensor, optional): ``(N, K)`` targets of per-label BCE
                losses of the plain images.
            observed (Tensor, optional): ``(N, K)`` tri-state labels the
                pass's samples must carry (a check that the pass rebuilt
                the training set as it is).

        Returns:
            dict: float32 ``(N, K)`` CPU tensors ``probs`` (plain images),
            ``view_probs`` (mean over the views; None without views) and
            ``losses`` (None without ``targets``).
        """
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        rank_seed = derive_seed(seed, dist.get_rank())
        generator = torch.Generator().manual_seed(rank_seed)
        sums, count = {}, torch.zeros(num_samples, dtype=torch.float32)
        was_training = model.training
        model.eval()
        forward = None  # the pass's forward, made from its first images
        loader = self.build_dataloader(runner)
        if isinstance(getattr(loader, 'sampler', None), KeyedSampler):
            loader.sampler.seed = int(seed)
        try:
            for data in keeping_global_rng(loader):
                idx, outputs, forward = self._forward_batch(
                    model, data, generator, observed, forward)
                if targets is not None:
                    outputs['losses'] = F.binary_cross_entropy_with_logits(
                        outputs.pop('logits'),
                        targets[idx].to(outputs['probs'].device).float(),
                        reduction='none')
                outputs.pop('logits', None)
                for name, value in outputs.items():
                    if name not in sums:
                        sums[name] = torch.zeros(
                            (num_samples, value.size(1)), dtype=torch.float32)
                    sums[name].index_add_(0, idx, value.float().cpu())
                count.index_add_(0, idx, torch.ones(len(idx)))
        finally:
            model.train(was_training)
        if dist.get_world_size() > 1:
            for t in [*sums.values(), count]:
                dist.all_reduce(t, op='sum')
        if bool((count == 0).any()):
            raise RuntimeError(
                f'{self.who}: the pass over the training set missed '
                f'{int((count == 0).sum())} of {num_samples} samples.')
        mean = {name: value / count[:, None] for name, value in sums.items()}
        return dict(probs=mean['probs'], view_probs=mean.get('view_probs'),
                    losses=mean.get('losses'))

    def _forward_batch(self, model, data: dict, generator, observed,
                       forward=None):
        """One loaded batch: its sample indices, the logits / probs of the
        plain images and the mean probs of their views, and the forward
        used (:meth:`inference_forward` of the first batch's images)."""
        inputs, samples = split_views(data, self.num_views, self.who)
        idx = sample_indices(samples, self.who)
        if observed is not None and 'gt_tristate' in samples[0]:
            tri = torch.stack([torch.as_tensor(s.gt_tristate)
                               for s in samples]).to(torch.int8)
            if not torch.equal(tri, observed[idx]):
                raise RuntimeError(
                    f'{self.who}: the pass over the training set disagrees '
                    'with the label store on the labels of the same '
                    'sample_idx; it must rebuild the training set (same '
                    'noise seed).')
        batch = model.data_preprocessor(dict(inputs=inputs,
                                             data_samples=None), False)
        images = batch['inputs']
        num = len(samples)
        if self.num_views and self.view_transforms is None:
            images = torch.cat([images] + [
                tensor_view_augment(images, generator,
                                    **self.tensor_view_cfg)
                for _ in range(self.num_views)])
        if forward is None:
            forward = self.inference_forward(model, images[:min(num, 16)])
        logits = self._forward(forward, images, num).float()
        out = dict(logits=logits[:num], probs=logits[:num].sigmoid())
        if self.num_views:
            out['view_probs'] = logits[num:].sigmoid().view(
                self.num_views, num, -1).mean(0)
        return idx, out, forward

    def inference_forward(self, model, example: torch.Tensor):
        """``model(x, mode='tensor')`` as a frozen, inference-optimised
        TorchScript trace of the model's current weights (with
        ``freeze_model``); the eager model when it cannot be traced or, on
        the first pass, when the trace's logits on ``example`` differ from
        the eager ones (a warning says so, once)."""
        eager = partial(model, mode='tensor')
        if not self.freeze_model:
            return eager
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                frozen = torch.jit.optimize_for_inference(
                    torch.jit.freeze(self._trace_of(model, example)))
            if not self._frozen_checked:
                self._check_frozen(frozen(example), eager(example))
        except Exception as error:  # noqa: BLE001 - any model may fail
            print_log(f'{self.who}: the pass runs the eager model: a frozen '
                      f'trace of it failed ({type(error).__name__}: '
                      f'{str(error)[:200]}). freeze_model=False '
                      '(pass_freeze_model=False in the hooks) skips the '
                      'attempt.', 'current', logging.WARNING)
            self.freeze_model = False
            return eager
        self._frozen_checked = True
        return frozen

    def _trace_of(self, model, example: torch.Tensor):
        """A TorchScript trace of ``model(x, mode='tensor')`` in eval mode,
        kept from pass to pass while it still holds the model's own
        parameter and buffer tensors (a trace shares them, so freezing it
        again bakes in the current weights)."""
        key = (id(model), tuple(example.shape[1:]), example.dtype,
               example.device)
        cached = self._traced
        if cached is not None and cached[0] == key and _shares_tensors(
                cached[1], model):
            return cached[1]
        traced = torch.jit.trace(_TensorMode(model).eval(), example[:2],
                                 check_trace=False)
        self._traced = (key, traced)
        return traced

    def _check_frozen(self, frozen_logits, eager_logits) -> None:
        if not isinstance(frozen_logits, torch.Tensor) or not torch.allclose(
                frozen_logits.float(), eager_logits.float(), rtol=1e-3,
                atol=1e-4):
            raise ValueError('the frozen trace does not give the eager '
                             "model's logits")

    def _forward(self, forward, images: torch.Tensor,
                 num: int) -> torch.Tensor:
        """``forward(images)`` in chunks of at most :attr:`max_forward`
        images (default: all of them on a GPU; ``num``, the loaded batch,
        on the CPU, where moderate batches run faster); a CUDA out-of-memory
        error halves the chunk (kept for the next batches)."""
        while True:
            step = self.max_forward or (
                num if images.device.type == 'cpu' else images.size(0))
            try:
                return torch.cat([
                    forward(images[s:s + step])
                    for s in range(0, images.size(0), step)
                ])
            except RuntimeError as error:
                # a TorchScript module reports it as a plain RuntimeError
                if step == 1 or not (
                        isinstance(error, torch.cuda.OutOfMemoryError)
                        or 'out of memory' in str(error)):
                    raise
                self.max_forward = max(1, step // 2)
                torch.cuda.empty_cache()


def _shares_tensors(traced, model) -> bool:
    """Whether every parameter and buffer of ``traced`` is a tensor of
    ``model`` (same storage)."""
    own = {t.data_ptr() for t in (*model.parameters(), *model.buffers())}
    return all(t.data_ptr() in own
               for t in (*traced.parameters(), *traced.buffers()))


class _TensorMode(torch.nn.Module):
    """``model(x, mode='tensor')`` as a module with a one-tensor forward,
    for ``torch.jit.trace``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model(inputs, mode='tensor')


class SeededSamples(Dataset):
    """``dataset`` indexed by ``(seed, index)`` keys: sample ``index``
    loaded with the global ``random`` / ``numpy`` / ``torch`` generators
    seeded by ``derive_seed(seed, index)``, so its random transforms depend
    on the pass seed and the sample only."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        seed, index = key
        _seed_everything(derive_seed(seed, index))
        return self.dataset[index]


class KeyedSampler(Sampler):
    """The indices of ``sampler`` as ``(seed, index)`` keys of
    :class:`SeededSamples`. ``seed`` is set in the main process before each
    pass; persistent workers receive it with the keys."""

    def __init__(self, sampler):
        self.sampler = sampler
        self.seed = 0

    def __iter__(self):
        return ((self.seed, index) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def keeping_global_rng(loader):
    """Iterate ``loader``, then restore the global ``random`` / ``numpy`` /
    ``torch`` generators: samples seeded in the main process (no workers)
    do not disturb the training's randomness."""
    states = (random.getstate(), np.random.get_state(),
              torch.get_rng_state())
    try:
        yield from loader
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    # the CPU generator only: torch.manual_seed also queues a (costly)
    # lazy CUDA seeding, and data transforms draw on the CPU
    torch.default_generator.manual_seed(seed % 2**64)


def split_views(data: dict, num_views: int, who: str):
    """The inputs of a loaded batch as one list (plain images first, then
    each view's) and its data samples. ``MultiView`` packs ``[plain,
    view_1, ...]`` per sample; both collates give one entry per view (a
    list of tensors or a stacked batch)."""
    inputs, samples = data['inputs'], data['data_samples']
    per_view = isinstance(inputs, (list, tuple)) and len(inputs) > 0 and (
        isinstance(inputs[0], (list, tuple)) or
        (isinstance(inputs[0], torch.Tensor) and inputs[0].dim() == 4))
    if not per_view:
        return inputs, samples
    if len(inputs) != 1 + num_views:
        raise ValueError(
            f'{who}: the pass expects {1 + num_views} images per sample (the '
            f'plain image and {num_views} views, MultiView), got '
            f'{len(inputs)}.')
    if isinstance(inputs[0], torch.Tensor):
        return torch.cat(list(inputs)), samples
    return [image for view in inputs for image in view], samples


def with_views(pipeline: List[dict], num_views: int,
               view_transforms: List[dict], who: str) -> List[dict]:
    """``pipeline`` with ``MultiView`` before its last (packing) transform:
    the plain image and ``num_views`` views of it, loaded once."""
    multi_view = dict(
        type='MultiView',
        num_views=[1, num_views],
        transforms=[[], [dict(t) if isinstance(t, dict) else t
                         for t in view_transforms]])
    return list(pipeline[:-1]) + [multi_view, pipeline[-1]]


def set_innermost_pipeline(dataset_cfg: dict, pipeline: list,
                           who: str) -> None:
    """Replace, in place, the pipeline of the innermost dataset of a
    (wrapped) dataset config."""
    node = dataset_cfg
    while 'pipeline' not in node:
        node = node.get('dataset')
        if not isinstance(node, dict):
            raise ValueError(f'{who}: a pass pipeline is given, but the '
                             'training dataset config has no `pipeline`.')
    node['pipeline'] = pipeline


def tensor_view_augment(inputs: torch.Tensor,
                        generator: Optional[torch.Generator] = None,
                        max_shift: float = 0.125,
                        min_scale: float = 0.8,
                        flip: bool = True) -> torch.Tensor:
    """A random view of a preprocessed ``(B, C, H, W)`` batch in tensor
    space: per image a zoom-in (scale in ``[min_scale, 1]`` of the field of
    view), a shift of up to ``max_shift`` of the image size and, with
    ``flip``, a horizontal flip with probability 0.5 (bilinear; outside
    pixels are 0, the mean after normalisation). A cheap stand-in for
    RandAugment views when no ``view_transforms`` are given."""
    num = inputs.size(0)
    r = torch.rand((num, 4), generator=generator, dtype=torch.float32)
    scale = min_scale + (1 - min_scale) * r[:, 0]
    shift = (2 * r[:, 1:3] - 1) * 2 * max_shift
    sign = torch.where(r[:, 3] < 0.5, -1.0, 1.0) if flip else \
        torch.ones(num)
    theta = torch.zeros((num, 2, 3), dtype=torch.float32)
    theta[:, 0, 0] = scale * sign
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    theta = theta.to(device=inputs.device, dtype=inputs.dtype)
    grid = F.affine_grid(theta, list(inputs.shape), align_corners=False)
    return F.grid_sample(inputs, grid, mode='bilinear',
                         padding_mode='zeros', align_corners=False)
