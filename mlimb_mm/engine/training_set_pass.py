"""One pass of the model over the whole training set, for methods that
need every sample's prediction or loss at an epoch end (BalanceMix's GMMs
and re-labelling views, pseudo labels, label correction)."""
import copy
import random
from functools import partial
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine import dist
from mmengine.model import is_model_wrapper

from .hooks.hook_utils import derive_seed, sample_indices

__all__ = ['TrainingSetPass', 'tensor_view_augment']


class TrainingSetPass:
    """Per-sample predictions (and per-label losses) of the whole training
    set, without autograd, gathered on every rank.

    The dataloader is the run's ``train_dataloader`` config with a
    non-shuffled ``DefaultSampler`` (each rank a disjoint shard), fresh
    workers seeded per pass and, optionally, another ``pipeline`` for the
    innermost dataset. With ``num_views`` augmented views each image is
    loaded once and its plain image and views (``MultiView``) go through
    the model together; on a GPU they run in the largest chunk that fits
    (halved after a CUDA out-of-memory error). The
    model runs in eval mode under ``torch.no_grad()``; the results are
    summed over ranks, so every rank holds all of them. Cost per pass:
    ``1 + num_views`` forward passes per training image, no backward.

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
        self.who = who
        self._loader = None

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
        # fresh workers every pass, seeded per pass: a resumed run makes
        # the interrupted run's views
        loader_cfg['persistent_workers'] = False
        loader_cfg['drop_last'] = False
        pipeline = copy.deepcopy(self.pipeline)
        if self.view_transforms is not None and self.num_views:
            pipeline = with_views(pipeline, self.num_views,
                                  copy.deepcopy(self.view_transforms),
                                  self.who)
        if pipeline is not None:
            loader_cfg['dataset'] = copy.deepcopy(loader_cfg['dataset'])
            set_innermost_pipeline(loader_cfg['dataset'], pipeline, self.who)
        self._loader = Runner.build_dataloader(loader_cfg)
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
                (mixed with the rank here).
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
        try:
            for data in seeded(self.build_dataloader(runner), rank_seed):
                idx, outputs = self._forward_batch(model, data, generator,
                                                   observed)
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

    def _forward_batch(self, model, data: dict, generator, observed):
        """One loaded batch: its sample indices and the logits / probs of
        the plain images and the mean probs of their views."""
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
        logits = self._forward(model, images, num).float()
        out = dict(logits=logits[:num], probs=logits[:num].sigmoid())
        if self.num_views:
            out['view_probs'] = logits[num:].sigmoid().view(
                self.num_views, num, -1).mean(0)
        return idx, out

    def _forward(self, model, images: torch.Tensor,
                 num: int) -> torch.Tensor:
        """``model(images, mode='tensor')`` in chunks of at most
        :attr:`max_forward` images (default: all of them on a GPU; ``num``,
        the loaded batch, on the CPU, where moderate batches run faster); a
        CUDA out-of-memory error halves the chunk (kept for the next
        batches)."""
        while True:
            step = self.max_forward or (
                num if images.device.type == 'cpu' else images.size(0))
            try:
                return torch.cat([
                    model(images[s:s + step], mode='tensor')
                    for s in range(0, images.size(0), step)
                ])
            except torch.cuda.OutOfMemoryError:
                if step == 1:
                    raise
                self.max_forward = max(1, step // 2)
                torch.cuda.empty_cache()


def seeded(loader, seed: int):
    """Iterate ``loader`` with its random transforms seeded by ``seed``: the
    (non-persistent) workers get a ``worker_init_fn`` from ``seed``; without
    workers the global ``random`` / ``numpy`` / ``torch`` generators are
    seeded for the pass and restored after it, so the training randomness
    is not disturbed."""
    if getattr(loader, 'num_workers', 0) > 0:
        loader.worker_init_fn = partial(_seed_worker, seed=seed)
        yield from loader
        return
    states = (random.getstate(), np.random.get_state(),
              torch.get_rng_state())
    _seed_everything(seed)
    try:
        yield from loader
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int, seed: int) -> None:
    _seed_everything(seed + 7919 * (worker_id + 1))


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
