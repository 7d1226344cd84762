"""Throughput and peak memory of every method on this machine's device (the
GPU when there is one), with the COCO configs' models, resolutions and
batch sizes, on synthetic images (no dataset needed).

    python tools/benchmark_gpu.py [--amp] [--methods bce plm ...]
        [--img-size PX] [--batch-size N] [--iters 20] [--warmup 3]
        [--workers N] [--threads N]

One short training run per method, through MMEngine's Runner with the
config's model, data preprocessor, sampler, optimizer and hooks (label
store, PLM, BalanceMix with its refinement pass, pseudo labels, COMIC's
corrector and moving vectors): ``--iters`` iterations of one epoch, then
the epoch's end (PLM's ratio update, BalanceMix's refinement pass over the
synthetic training set and minority-sampler update, ...). Rows:

- ``bce``: configs/baseline/resnet50_coco_bce.py
- ``db_focal``: configs/db_loss/resnet50_coco_mlt_db_focal.py
- ``plm``: configs/plm/resnet50_coco_plm.py
- ``balancemix``: configs/balancemix/resnet50_coco_noisy.py
- ``an`` / ``pseudo_labels``: configs/partial_labels/resnet50_coco_pal60_an.py
  (AN-BCE) / resnet50_coco_pal60_pseudo.py; with both, a line gives the
  pseudo-label method's step over AN-BCE's (goal <= 1.05)
- ``comic_separate`` / ``comic_shared``: configs/comic/resnet50_plt_coco_comic
  (_shared).py

The images are random, ``img_size`` of the config (224 or 448) unless
``--img-size``; the training pipeline is only the packing transform (the
augmentations of the configs are CPU work in the dataloader workers, not
what is measured) and the refinement pass makes its views in tensor space.
The labels are long-tailed (80 classes, ~3 positives per image), 40%
unknown for the partial-label method. The backbones start from random
weights (no download). BCE always runs, first.

Columns: the step time (median over the iterations after ``--warmup``,
from the first hook before the iteration to the last hook after it: data
preprocessor, forward, losses, backward, optimizer and every hook's
per-iteration work, without the wait for data), images loaded per second
(BalanceMix loads 2B images and trains on the B mixed ones), the peak
memory of the training iterations (a GPU: ``torch.cuda.max_memory_
allocated``; the CPU: the growth of the process' resident memory from
before the run was built, sampled every 5 ms), the step time over BCE's in
the same run and the time of the epoch's end.
"""
import argparse
import copy
import ctypes
import gc
import os
import os.path as osp
import sys
import tempfile
import threading
import time
import warnings

warnings.filterwarnings('ignore', message='Fail to import ``MultiScale')
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.runner import EpochBasedTrainLoop, Runner  # noqa: E402
from mmpretrain.registry import DATASETS, LOOPS  # noqa: E402

import mlimb_mm  # noqa: E402,F401
from mlimb_mm.datasets.base_multi_label import \
    BaseMultiLabelDataset  # noqa: E402
from mlimb_mm.engine import amp_optim_wrapper_cfg  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
METHODS = {
    'bce': ('BCE', 'configs/baseline/resnet50_coco_bce.py'),
    'db_focal': ('DB-Focal', 'configs/db_loss/resnet50_coco_mlt_db_focal.py'),
    'plm': ('PLM', 'configs/plm/resnet50_coco_plm.py'),
    'balancemix': ('BalanceMix + refinement',
                   'configs/balancemix/resnet50_coco_noisy.py'),
    'an': ('AN-BCE (PAL 0.6)',
           'configs/partial_labels/resnet50_coco_pal60_an.py'),
    'pseudo_labels': ('pseudo labels (PAL 0.6)',
                      'configs/partial_labels/resnet50_coco_pal60_pseudo.py'),
    'comic_separate': ('COMIC separate',
                       'configs/comic/resnet50_plt_coco_comic.py'),
    'comic_shared': ('COMIC shared',
                     'configs/comic/resnet50_plt_coco_comic_shared.py'),
}
#: unknown labels of the synthetic training set, per method
UNKNOWN_RATE = dict(an=0.4, pseudo_labels=0.4)
#: the pseudo-label method's step-time goal over AN-BCE's
PSEUDO_OVER_AN_GOAL = 1.05


@DATASETS.register_module(force=True)
class SyntheticTriStateDataset(BaseMultiLabelDataset):
    """``num_samples`` random ``img_size`` RGB images (16 distinct ones,
    cycled: no decoding cost) with long-tailed tri-state labels: class k
    present with probability ``0.5 / (k + 1) ** 0.8`` (at least one
    positive per image), each label unknown with ``unknown_rate``."""

    def __init__(self, num_samples: int, num_classes: int, img_size: int,
                 unknown_rate: float = 0., seed: int = 0, **kwargs):
        self.num_samples, self.num_classes = num_samples, num_classes
        self.img_size, self.unknown_rate = img_size, unknown_rate
        self.seed = seed
        self._images = None
        super().__init__(
            ann_file='',
            metainfo=dict(classes=[f'class{k}' for k in range(num_classes)]),
            **kwargs)

    def load_data_list(self):
        rng = np.random.default_rng(self.seed)
        num, k = self.num_samples, self.num_classes
        freq = 0.5 / (np.arange(k) + 1.)**0.8
        labels = (rng.random((num, k)) < freq).astype(np.int8)
        labels[np.arange(num), rng.integers(0, k, num)] = 1
        labels[rng.random((num, k)) < self.unknown_rate] = -1
        return [
            dict(gt_tristate=labels[i],
                 gt_label=np.flatnonzero(labels[i] == 1).tolist(),
                 img_path=f'synthetic/{i:06d}.png') for i in range(num)
        ]

    def prepare_data(self, idx):
        if self._images is None:
            rng = np.random.default_rng(self.seed + 1)
            self._images = rng.integers(
                0, 256, (16, self.img_size, self.img_size, 3), np.uint8)
        info = self.get_data_info(idx)
        info['img'] = self._images[idx % len(self._images)].copy()
        info['img_shape'] = info['ori_shape'] = (self.img_size, ) * 2
        return self.pipeline(info)


@LOOPS.register_module(force=True)
class BenchmarkEpochLoop(EpochBasedTrainLoop):
    """One epoch of ``iters`` iterations, then the epoch's end."""

    def __init__(self, runner, dataloader, iters: int, **kwargs):
        super().__init__(runner, dataloader, max_epochs=1,
                         val_interval=1 << 30)
        self.iters = int(iters)

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        for idx, data_batch in enumerate(self.dataloader):
            if idx >= self.iters:
                break
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


def resident_bytes() -> int:
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Probe:
    """Timing and memory of the training iterations, from two hooks: the
    first before each iteration (priority HIGHEST) and the last after it
    (LOWEST), and a third at the end of the epoch (LOWEST)."""

    def __init__(self, device: torch.device, warmup: int):
        self.device, self.warmup = device, warmup
        self.times, self.peak, self.base = [], 0, 0
        self.epoch_end = None
        self._t0 = self._t_last = None
        self._sampling = False

    def sync(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _sample(self):
        while self._sampling:
            self.peak = max(self.peak, resident_bytes() - self.base)
            time.sleep(0.005)

    def before_train(self):
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._sampling = True
            threading.Thread(target=self._sample, daemon=True).start()

    def before_iter(self):
        self._t0 = self.sync()

    def after_iter(self, batch_idx):
        self._t_last = self.sync()
        if batch_idx >= self.warmup:
            self.times.append(self._t_last - self._t0)
        if self.device.type == 'cuda':
            self.peak = torch.cuda.max_memory_allocated(self.device)

    def after_epoch(self):
        self._sampling = False
        self.epoch_end = self.sync() - self._t_last

    def hooks(self):
        probe = self

        class First(Hook):
            priority = 'HIGHEST'

            def before_train(self, runner):
                probe.before_train()

            def before_train_iter(self, runner, batch_idx, data_batch=None):
                probe.before_iter()

        class Last(Hook):
            priority = 'LOWEST'

            def after_train_iter(self, runner, batch_idx, data_batch=None,
                                 outputs=None):
                probe.after_iter(batch_idx)

            def after_train_epoch(self, runner):
                probe.after_epoch()

        return [First(), Last()]


def method_cfg(method, args, work_dir, device):
    """The method's COCO config set up for the benchmark."""
    cfg = Config.fromfile(osp.join(REPO, METHODS[method][1]))
    cfg.model.backbone.pop('init_cfg', None)  # random weights, no download
    size = args.img_size or cfg.get('img_size', 224)
    loader = cfg.train_dataloader
    batch = args.batch_size or loader.batch_size
    sampler = dict(loader.sampler)
    if sampler['type'] == 'BalanceMixSampler':
        if batch % 2:
            raise ValueError('--batch-size: BalanceMix loads 2B images per '
                             f'step (B random + B minority), got {batch}.')
        sampler['batch_size_per_half'] = batch // 2
    num_samples = (args.iters + 1) * batch
    cfg.train_dataloader = dict(
        batch_size=batch, num_workers=args.workers,
        persistent_workers=False, pin_memory=device.type == 'cuda',
        sampler=sampler, collate_fn=dict(type='default_collate'),
        dataset=dict(type='SyntheticTriStateDataset',
                     num_samples=num_samples,
                     num_classes=cfg.model.head.num_classes, img_size=size,
                     unknown_rate=UNKNOWN_RATE.get(method, 0.),
                     pipeline=[dict(type='PackMultiLabelInputs')]))
    hooks = copy.deepcopy(list(cfg.get('custom_hooks', [])))
    for hook in hooks:
        if hook['type'] == 'LabelRefinementHook':
            # refine at the end of the (only) epoch; views in tensor space
            hook.update(warmup_epochs=0, pass_pipeline=None,
                        view_transforms=None, export=None,
                        pass_num_workers=args.workers)
    cfg.custom_hooks = hooks
    cfg.train_cfg = dict(type='BenchmarkEpochLoop', iters=args.iters)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.default_hooks = dict(cfg.default_hooks, checkpoint=None,
                             logger=dict(type='LoggerHook',
                                         interval=1 << 30))
    cfg.log_level = 'WARNING'
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    cfg.randomness = dict(seed=0)
    if args.amp:
        cfg.optim_wrapper = amp_optim_wrapper_cfg(cfg.optim_wrapper,
                                                  device.type)
    return cfg, size, batch


def run_method(method, args, device):
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    else:
        try:  # hand the previous run's freed memory back to the system
            ctypes.CDLL('libc.so.6').malloc_trim(0)
        except (OSError, AttributeError):
            pass
    probe = Probe(device, args.warmup)
    probe.base = resident_bytes()
    with tempfile.TemporaryDirectory() as work_dir:
        cfg, size, batch = method_cfg(method, args, work_dir, device)
        runner = Runner.from_cfg(cfg)
        for hook in probe.hooks():
            runner.register_hook(hook)
        runner.train()
        wrapper = type(runner.optim_wrapper).__name__
        del runner
    step = float(np.median(probe.times))
    return dict(name=METHODS[method][0], img_size=size, batch=batch,
                step_ms=step * 1e3, images_per_s=batch / step,
                memory_mb=probe.peak / 2**20, epoch_end_s=probe.epoch_end,
                optim_wrapper=wrapper)


def device_name(device) -> str:
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return 'CPU ' + line.split(':', 1)[1].strip()
    except OSError:
        pass
    return 'CPU'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--methods', nargs='+', choices=list(METHODS),
                        default=list(METHODS))
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision as tools/train.py --amp: '
                        'float16 + loss scaler on a GPU, bfloat16 on the CPU')
    parser.add_argument('--img-size', type=int, default=None,
                        help='image side for every method (default: each '
                        "config's img_size)")
    parser.add_argument('--batch-size', type=int, default=None,
                        help="images loaded per step (default: each config's "
                        'batch size)')
    parser.add_argument('--iters', type=int, default=20,
                        help='training iterations per method')
    parser.add_argument('--warmup', type=int, default=3,
                        help='first iterations left out of the timing')
    parser.add_argument('--workers', type=int, default=None,
                        help='dataloader workers (default: 4 on a GPU, 0 on '
                        'the CPU)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads')
    args = parser.parse_args(argv)
    if args.iters <= args.warmup:
        parser.error('--iters must exceed --warmup')
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if args.workers is None:
        args.workers = 4 if device.type == 'cuda' else 0
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = ['bce'] + [m for m in args.methods if m != 'bce']
    rows = {m: run_method(m, args, device) for m in methods}
    base = rows['bce']['step_ms']
    precision = 'float32'
    if args.amp:
        precision = 'float16 AMP (AmpOptimWrapper)' if device.type == 'cuda' \
            else 'bfloat16 autocast (AutocastOptimWrapper)'
    memory = ('torch.cuda.max_memory_allocated' if device.type == 'cuda' else
              'growth of resident memory')
    print(f'{device_name(device)}, torch {torch.__version__}, '
          f'{torch.get_num_threads()} threads, {precision}; ResNet-50 '
          f'models of the COCO configs, synthetic images, {args.iters} '
          f'iterations ({args.warmup} warm-up); memory: {memory}')
    print('| method | px | batch | step (ms) | images / s | peak memory (MB) '
          '| step / BCE | epoch end (s) |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for row in rows.values():
        row['time_ratio'] = row['step_ms'] / base
        print(f'| {row["name"]} | {row["img_size"]} | {row["batch"]} | '
              f'{row["step_ms"]:.1f} | {row["images_per_s"]:.1f} | '
              f'{row["memory_mb"]:.0f} | {row["time_ratio"]:.2f} | '
              f'{row["epoch_end_s"]:.2f} |')
    if 'an' in rows and 'pseudo_labels' in rows:
        ratio = rows['pseudo_labels']['step_ms'] / rows['an']['step_ms']
        rows['pseudo_labels']['an_ratio'] = ratio
        verdict = 'met' if ratio <= PSEUDO_OVER_AN_GOAL else 'MISSED'
        print(f'pseudo labels / AN-BCE step: {ratio:.2f} (goal <= '
              f'{PSEUDO_OVER_AN_GOAL}: {verdict})')
    return rows


if __name__ == '__main__':
    main()
