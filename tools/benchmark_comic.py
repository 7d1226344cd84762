"""Cost of COMIC's three backbone options against a one-branch BCE model,
measured in one run on this machine.

    python tools/benchmark_comic.py [--arch digits|resnet50] [--batch 32]
        [--size PX] [--steps 3] [--rounds 5]

Rows (the models of ``configs/comic/``, without their pre-trained weights):

- ``BCE``: one backbone, a linear head, BCE (Table 1's baseline);
- ``COMIC separate``: one backbone per branch (the paper);
- ``COMIC shared``: one backbone, a projection per branch;
- ``COMIC frozen``: one frozen backbone, trained projections, three
  sampler streams per step (the authors' code: 3 x batch images).

Each row is a whole training step (data preprocessor, forward, losses,
backward, Adam update, and for COMIC the moving-vector update) on a
synthetic batch of ``batch`` images per stream, timed in interleaved rounds
(median over the rounds, so that a change of load hits every row alike),
and its peak memory: on a GPU ``torch.cuda.max_memory_allocated`` of a
step; on the CPU the tensors a step holds at its peak: parameters,
gradients, Adam's two moments and the activations saved for the backward
pass (counted once per storage with ``saved_tensors_hooks``). Both as
ratios to BCE. Goals: shared <= 1.3x, separate <= 3.2x.
"""
import argparse
import os.path as osp
import sys
import time
import warnings

warnings.filterwarnings('ignore', message='Fail to import ``MultiScale')
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402
from mmpretrain.registry import MODELS, TRANSFORMS  # noqa: E402

import mlimb_mm  # noqa: E402,F401
from mlimb_mm.models.utils.comic import moving_vector_step  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ARCHS = {
    'digits':
    dict(size=48,
         configs={
             'BCE': 'configs/comic/resnet18_cocolike_plt_bce.py',
             'COMIC separate': 'configs/comic/resnet18_cocolike_plt_comic.py',
             'COMIC shared':
             'configs/comic/resnet18_cocolike_plt_comic_shared.py',
             'COMIC frozen':
             'configs/comic/resnet18_cocolike_plt_comic_frozen.py',
         }),
    'resnet50':
    dict(size=224,
         configs={
             'BCE': 'configs/baseline/resnet50_coco_bce.py',
             'COMIC separate': 'configs/comic/resnet50_plt_coco_comic.py',
             'COMIC shared': 'configs/comic/resnet50_plt_coco_comic_shared.py',
             'COMIC frozen': 'configs/comic/resnet50_plt_coco_comic_frozen.py',
         }),
}
GOALS = {'COMIC shared': 1.3, 'COMIC separate': 3.2}


def build_model(config: str, device):
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.pop('init_cfg', None)  # no download
    model = MODELS.build(cfg.model).to(device)
    num_classes = cfg.model.head.num_classes
    counts = np.maximum(1, (1200 * np.linspace(1, 0, num_classes)**6))
    for module in model.modules():
        if hasattr(module, 'set_class_statistics'):
            module.set_class_statistics(counts.astype(np.int64), 3000)
    return model, num_classes


def make_data(num, num_classes, size, rng):
    pack = TRANSFORMS.build(dict(type='PackMultiLabelInputs'))
    samples = []
    for idx in range(num):
        tristate = (rng.random(num_classes) < 3 / num_classes).astype(np.int8)
        samples.append(pack(dict(
            img=rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
            gt_tristate=tristate, sample_idx=idx)))
    return dict(inputs=[s['inputs'] for s in samples],
                data_samples=[s['data_samples'] for s in samples])


def make_step(config, batch, size, device, rng):
    model, num_classes = build_model(config, device)
    num = batch * getattr(model, 'num_streams', 1)
    data = make_data(num, num_classes, size, rng)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    optim = OptimWrapper(optimizer)
    head = model.head
    model.train()

    def step():
        model.train_step(data, optim)
        means = getattr(head, 'pop_feature_means', lambda: None)()
        if means is not None:  # what MovingGradientHook adds per step
            with torch.no_grad():
                head.moving_vectors.copy_(
                    moving_vector_step(head.moving_vectors, means))

    return step, model, optimizer, num


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def memory_of(step, model, optimizer, device) -> float:
    """Peak bytes of one step (see the module docstring)."""
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize()
        return float(torch.cuda.max_memory_allocated(device))
    saved = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        saved[(storage.data_ptr(), tensor.device)] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    return float(tensor_bytes(params) + 3 * tensor_bytes(trainable) +
                 sum(saved.values()))


def time_block(func, iters, device):
    if device.type == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        func()
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', choices=sorted(ARCHS), default='digits')
    parser.add_argument('--batch', type=int, default=32,
                        help='images per stream and step')
    parser.add_argument('--size', type=int, default=None,
                        help='image side (default: 48 digits, 224 ResNet-50)')
    parser.add_argument('--steps', type=int, default=3,
                        help='training steps per round')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--device', default=None)
    args = parser.parse_args(argv)
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    arch = ARCHS[args.arch]
    size = args.size or arch['size']
    torch.manual_seed(0)
    rows = {}
    for name, config in arch['configs'].items():
        rng = np.random.default_rng(0)
        step, model, optimizer, num = make_step(config, args.batch, size,
                                                device, rng)
        time_block(step, 2, device)  # warm-up (and Adam's state)
        rows[name] = dict(step=step, images=num, times=[],
                          memory=memory_of(step, model, optimizer, device))
    for _ in range(args.rounds):
        for row in rows.values():
            row['times'].append(time_block(row['step'], args.steps, device))
    base = rows['BCE']
    base_time, base_mem = float(np.median(base['times'])), base['memory']
    memory_kind = ('max_memory_allocated' if device.type == 'cuda' else
                   'params + grads + Adam + saved activations')
    print(f'torch {torch.__version__}, {device}, '
          f'{torch.get_num_threads()} threads; {args.arch} at {size} px, '
          f'{args.batch} images per stream; memory: {memory_kind}')
    print('| model | images / step | step (ms) | ratio | memory (MB) | '
          'ratio | goal |')
    print('| --- | --- | --- | --- | --- | --- | --- |')
    results = {}
    for name, row in rows.items():
        t = float(np.median(row['times']))
        ratio_t, ratio_m = t / base_time, row['memory'] / base_mem
        goal = GOALS.get(name)
        verdict = '' if goal is None else (
            f'<= {goal} ' + ('met' if max(ratio_t, ratio_m) <= goal
                             else 'MISSED'))
        print(f'| {name} | {row["images"]} | {t * 1e3:.1f} | {ratio_t:.2f} '
              f'| {row["memory"] / 2**20:.1f} | {ratio_m:.2f} | {verdict} |')
        results[name] = dict(step_ms=t * 1e3, time_ratio=ratio_t,
                             memory_mb=row['memory'] / 2**20,
                             memory_ratio=ratio_m)
    return results


if __name__ == '__main__':
    main()
