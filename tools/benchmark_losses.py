"""Step-time cost of the multi-label losses against BCE, measured in one
run on this machine.

    python tools/benchmark_losses.py [--batch 64] [--classes 80] [--iters 200]

Two measurements per loss, each as a ratio to BCE measured the same way in
the same process:

- ``loss``: forward + backward of the loss alone on ``(batch, classes)``
  logits (COCO scale by default), the loss's own overhead;
- ``step``: a whole training step (data preprocessor, forward, loss,
  backward, SGD update) of the embedded-digits model from
  ``configs/baseline/resnet18_digits_lt_bce.py`` on a batch of 40x40 images,
  what a user sees per iteration.

Rows: BCE (``MultiLabelBCELoss``), then every ``DistributionBalancedLoss``
preset (Table 1 of the DB paper: RS uses the BCE preset, the sampler is not
a loss cost). The losses are timed in interleaved rounds and each reports
its median over the rounds, so that a change of machine load during the run
hits every row alike.
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
from mmpretrain.registry import MODELS  # noqa: E402

import mlimb_mm  # noqa: E402,F401
from mlimb_mm.models.losses.distribution_balanced_loss import \
    PRESETS  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DIGITS_CONFIG = osp.join(REPO, 'configs/baseline/resnet18_digits_lt_bce.py')


def loss_configs():
    rows = {'BCE (MultiLabelBCELoss)': dict(type='MultiLabelBCELoss')}
    for preset in PRESETS:
        rows[preset] = dict(type='DistributionBalancedLoss', preset=preset,
                            use_avg_factor=True)
    return rows


def class_statistics(num_classes, rng):
    counts = np.sort(rng.integers(5, 2000, num_classes))[::-1].copy()
    return counts, int(counts.max() * 3)


def set_statistics(module, counts, num_samples):
    for sub in module.modules():
        if hasattr(sub, 'set_class_statistics'):
            sub.set_class_statistics(counts, num_samples)


def time_block(func, iters):
    start = time.perf_counter()
    for _ in range(iters):
        func()
    return (time.perf_counter() - start) / iters


def loss_step(loss_cfg, batch, num_classes, rng):
    loss = MODELS.build(loss_cfg)
    counts, num_samples = class_statistics(num_classes, rng)
    set_statistics(loss, counts, num_samples)
    logits = torch.randn(batch, num_classes, requires_grad=True)
    target = (torch.rand(batch, num_classes) < 0.05).float()
    weight = torch.ones(batch, num_classes)

    def step():
        value = loss(logits, target, weight=weight, avg_factor=batch)
        value.backward()
        logits.grad = None

    return step


def train_step(loss_cfg, batch, rng):
    cfg = Config.fromfile(DIGITS_CONFIG)
    cfg.model.head.loss = loss_cfg
    model = MODELS.build(cfg.model)
    counts, num_samples = class_statistics(10, rng)
    set_statistics(model, counts, num_samples)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    from mmpretrain.registry import TRANSFORMS
    pack = TRANSFORMS.build(dict(type='PackMultiLabelInputs'))
    samples = []
    for idx in range(batch):
        tristate = (rng.random(10) < 0.2).astype(np.int8)
        samples.append(
            pack(dict(img=rng.integers(0, 255, (40, 40, 3), dtype=np.uint8),
                      gt_tristate=tristate, sample_idx=idx)))
    data = dict(inputs=[s['inputs'] for s in samples],
                data_samples=[s['data_samples'] for s in samples])
    model.train()

    def step():
        batch_data = model.data_preprocessor(data, training=True)
        losses = model(**batch_data, mode='loss')
        sum(losses.values()).backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--classes', type=int, default=80)
    parser.add_argument('--iters', type=int, default=100,
                        help='loss iterations per round')
    parser.add_argument('--steps', type=int, default=5,
                        help='training steps per round')
    parser.add_argument('--rounds', type=int, default=5)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    steps = {}
    for name, cfg in loss_configs().items():
        rng = np.random.default_rng(0)
        steps[name] = (loss_step(cfg, args.batch, args.classes, rng),
                       train_step(cfg, args.batch, rng))
        for func in steps[name]:  # warm-up
            time_block(func, 2)
    times = {name: ([], []) for name in steps}
    for _ in range(args.rounds):
        for name, (loss_func, step_func) in steps.items():
            times[name][0].append(time_block(loss_func, args.iters))
            times[name][1].append(time_block(step_func, args.steps))
    rows = [(name, float(np.median(loss_times)), float(np.median(step_times)))
            for name, (loss_times, step_times) in times.items()]
    base_loss, base_step = rows[0][1], rows[0][2]
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads; '
          f'loss on ({args.batch}, {args.classes}) logits, step on the '
          f'digits model at batch {args.batch}')
    print('| loss | loss fwd+bwd (ms) | ratio | train step (ms) | ratio |')
    print('| --- | --- | --- | --- | --- |')
    for name, loss_time, step_time in rows:
        print(f'| {name} | {loss_time * 1e3:.3f} | '
              f'{loss_time / base_loss:.2f} | {step_time * 1e3:.1f} | '
              f'{step_time / base_step:.2f} |')
    return rows


if __name__ == '__main__':
    main()
