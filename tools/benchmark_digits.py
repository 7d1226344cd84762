"""The main job on the embedded data: train methods on the long-tailed
multi-label digits (or the COCO-shaped digits) and print one table of their
test metrics per training set.

    python tools/benchmark_digits.py [--dataset {digits,cocolike}]
        [--methods bce ...] [--seeds 0 1 2] [--epochs N]
        [--work-dir work_dirs/DATASET_benchmark] [--cfg-options KEY=VALUE ...]

Each (method, seed) is a plain ``tools/train.py`` run of the method's config
(so what is measured here is what users run); a method name maps to the
config of the chosen ``--dataset`` (:data:`DATASETS`); methods whose
resolved configs are identical (``pal30_full`` and ``pal60_full``) are
trained once and reported under each name. While the runs train,
a progress line per run is printed periodically (its epoch, the time left
estimated from the time so far, and each validation mAP). The final
evaluation of each run is read from its ``vis_data/scalars.json``. The table
gives the mean (and the standard deviation over seeds when there are
several) of overall and many / medium / few-shot mAP, macro F1, recall and
F1 over the 3 (and, where the configs report it, 5) least frequent classes,
exact match, in percent, plus the training time.

Configs that start from an ``embedded://`` backbone (the noisy digits
methods) get it from the cache of ``mlimb_mm.utils.embedded_weights``; when
it is missing it is pre-trained once before the runs start.
"""
import argparse
import contextlib
import functools
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

# Method name -> config, relative to the repository.
METHODS = {
    'bce': 'configs/baseline/resnet18_digits_lt_bce.py',
    # Distribution-Balanced loss family with class-aware re-sampling
    # (DB paper, Table 1 rows).
    'rs': 'configs/db_loss/resnet18_digits_lt_rs.py',
    'rs_focal': 'configs/db_loss/resnet18_digits_lt_rs_focal.py',
    'rbce_focal': 'configs/db_loss/resnet18_digits_lt_rbce_focal.py',
    'db': 'configs/db_loss/resnet18_digits_lt_db.py',
    'db_focal': 'configs/db_loss/resnet18_digits_lt_db_focal.py',
    # PLM and the comparison rows of its Table 1.
    'focal': 'configs/plm/resnet18_digits_lt_focal.py',
    'cb': 'configs/plm/resnet18_digits_lt_cb.py',
    'undersample': 'configs/plm/resnet18_digits_lt_undersample.py',
    'plm_bce': 'configs/plm/resnet18_digits_lt_plm_bce.py',
    'plm_focal': 'configs/plm/resnet18_digits_lt_plm_focal.py',
    'plm_db': 'configs/plm/resnet18_digits_lt_plm_db.py',
    # BalanceMix on the noisy long-tailed digits (40% mislabelling) and the
    # ablation rows of its Table 5.
    'noisy_bce': 'configs/balancemix/resnet18_digits_lt_noisy_bce.py',
    'noisy_mixup': 'configs/balancemix/resnet18_digits_lt_noisy_mixup.py',
    'noisy_minority':
    'configs/balancemix/resnet18_digits_lt_noisy_minority.py',
    'noisy_clean': 'configs/balancemix/resnet18_digits_lt_noisy_clean.py',
    'noisy_relabel': 'configs/balancemix/resnet18_digits_lt_noisy_relabel.py',
    'noisy_balancemix':
    'configs/balancemix/resnet18_digits_lt_noisy_balancemix.py',
    # the same with 40% random flipping of every label
    'noisy_flip_bce': 'configs/balancemix/resnet18_digits_lt_noisy_flip_bce.py',
    'noisy_flip_mixup':
    'configs/balancemix/resnet18_digits_lt_noisy_flip_mixup.py',
    'noisy_flip_balancemix':
    'configs/balancemix/resnet18_digits_lt_noisy_flip_balancemix.py',
    # the GMM label refinement with DB-Focal and class-aware sampling
    'noisy_db_focal_refine':
    'configs/balancemix/resnet18_digits_lt_noisy_db_focal_refine.py',
}
#: the main job (the README's quick start): DB-Focal and PLM against BCE on
#: the long-tailed digits, from scratch (no pre-training), under 10 minutes
#: on 2 cores
DEFAULT_METHODS = ['bce', 'db_focal', 'plm_bce']
#: one table per training set, in this order; a method belongs to the
#: longest prefix it has
SETTINGS = [
    ('noisy_', 'noisy long-tailed digits, 40% mislabelling (Eq. 11)'),
    ('noisy_flip_', 'noisy long-tailed digits, 40% random flipping'),
    ('', 'long-tailed digits, clean labels'),
]
#: the digits methods; ``METHODS`` is the table of the dataset in use
#: (:func:`dataset_methods`)
DIGITS_METHODS = METHODS
# The same method names on the COCO-shaped digits (docs/cocolike.md): the DB
# and PLM rows on CocoLike-MLT (the COCO-MLT recipe); 'bce' is the PLM
# directory's BCE config, the DB BCE baseline plus the K=5 least-frequent
# metrics, so that one run serves both tables.
COCOLIKE_METHODS = {
    'natural_bce': 'configs/baseline/resnet18_cocolike_bce.py',
    'bce': 'configs/plm/resnet18_cocolike_mlt_bce.py',
    # Distribution-Balanced loss family with class-aware re-sampling
    'rs': 'configs/db_loss/resnet18_cocolike_mlt_rs.py',
    'rs_focal': 'configs/db_loss/resnet18_cocolike_mlt_rs_focal.py',
    'rbce_focal': 'configs/db_loss/resnet18_cocolike_mlt_rbce_focal.py',
    'db': 'configs/db_loss/resnet18_cocolike_mlt_db.py',
    'db_focal': 'configs/db_loss/resnet18_cocolike_mlt_db_focal.py',
    # PLM and the comparison rows of its Table 1
    'focal': 'configs/plm/resnet18_cocolike_mlt_focal.py',
    'cb': 'configs/plm/resnet18_cocolike_mlt_cb.py',
    'undersample': 'configs/plm/resnet18_cocolike_mlt_undersample.py',
    'plm_bce': 'configs/plm/resnet18_cocolike_mlt_plm_bce.py',
    'plm_cb': 'configs/plm/resnet18_cocolike_mlt_plm_cb.py',
    'plm_undersample':
    'configs/plm/resnet18_cocolike_mlt_plm_undersample.py',
}
# BalanceMix's Table 5 rows on the noisy COCO-shaped digits (40%
# mislabelling, and random flipping), and the positives-only minority score
COCOLIKE_METHODS.update({
    f'noisy_{row}': f'configs/balancemix/resnet18_cocolike_noisy_{row}.py'
    for row in ('bce', 'mixup', 'minority', 'minority_positives', 'clean',
                'relabel', 'balancemix', 'flip_bce', 'flip_mixup',
                'flip_balancemix')
})
# Zhang et al. and the partial-label baselines (configs/partial_labels/):
# PAL 30% / 60%, PPL 60% and SPL, the Table VII ablation rows and variants
COCOLIKE_METHODS.update({
    name[len('resnet18_cocolike_'):-len('.py')]:
    f'configs/partial_labels/{name}'
    for name in sorted(os.listdir(osp.join(REPO, 'configs/partial_labels')))
    if name.startswith('resnet18_cocolike_')
})
# COMIC on CocoLike-PLT (configs/comic/): the backbone options, the module
# ablations and the BCE / DB-Focal baselines
COCOLIKE_METHODS.update({
    name[len('resnet18_cocolike_'):-len('.py')]: f'configs/comic/{name}'
    for name in sorted(os.listdir(osp.join(REPO, 'configs/comic')))
    if name.startswith('resnet18_cocolike_plt_')
})
#: per --dataset: its methods, the default ones, and its settings (one
#: table per training set; a method belongs to the longest prefix it has)
DATASETS = {
    'digits':
    dict(methods=DIGITS_METHODS, default=DEFAULT_METHODS,
         settings=SETTINGS),
    'cocolike':
    dict(
        methods=COCOLIKE_METHODS,
        default=['bce', 'db_focal', 'plm_bce'],
        settings=[
            ('natural_', 'COCO-shaped digits, natural long tail (1,500 '
             'images), clean labels'),
            ('', 'CocoLike-MLT (the COCO-MLT recipe on the COCO-shaped '
             'digits), clean labels'),
            ('noisy_', 'noisy COCO-shaped digits, 40% mislabelling '
             '(Eq. 11)'),
            ('noisy_flip_', 'noisy COCO-shaped digits, 40% random flipping'),
            ('pal30_', 'COCO-shaped digits, PAL: 30% of the labels known'),
            ('pal60_', 'COCO-shaped digits, PAL: 60% of the labels known'),
            ('ppl60_', 'COCO-shaped digits, PPL: 60% of the positives '
             'known, no negative'),
            ('spl_', 'COCO-shaped digits, SPL: one positive per image'),
            ('plt_', 'CocoLike-PLT (CocoLike-MLT with 40% of the positives '
             'missing)'),
        ]),
}
COLUMNS = [('mAP', 'mAP'), ('many', 'mAP_many'), ('medium', 'mAP_medium'),
           ('few', 'mAP_few'), ('F1', 'f1'), ('R least-3', 'recall_least'),
           ('F1 least-3', 'f1_least'), ('R least-5', 'least5/recall_least'),
           ('F1 least-5', 'least5/f1_least'), ('exact match', 'exact_match')]
#: seconds between two progress lines of a run
PROGRESS_INTERVAL = 30.


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--dataset', choices=list(DATASETS), default='digits',
        help='digits: the long-tailed (and noisy) digits; cocolike: the '
        'COCO-shaped digits (docs/cocolike.md). Default: digits')
    parser.add_argument(
        '--methods', nargs='+',
        help='methods of the dataset (default: ' + '; '.join(
            f'{name}: {" ".join(info["default"])}'
            for name, info in DATASETS.items()) + ')')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument(
        '--epochs', type=int, help='override the configs\' max_epochs')
    parser.add_argument(
        '--work-dir', help='default: work_dirs/DATASET_benchmark')
    parser.add_argument(
        '--progress-interval', type=float, default=PROGRESS_INTERVAL,
        help='seconds between two progress lines of a run (default '
        f'{PROGRESS_INTERVAL:g}; 0 prints every logged step)')
    parser.add_argument(
        '--reuse', action='store_true',
        help='keep the results of runs that finished before (their '
        'WORK_DIR/METHOD_seedN.json, or that of a method with the same '
        'resolved config) instead of training them again')
    parser.add_argument(
        '--jobs', type=int, default=min(os.cpu_count() or 1, 4),
        help='runs at the same time (default: one per core, at most 4); '
        'each gets cores/jobs torch threads '
        '(small models on few cores train faster side by side than with '
        'all threads fighting over one run)')
    parser.add_argument(
        '--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
        help='passed on to the tools/train.py --cfg-options of every run, '
        'e.g. train_dataloader.dataset.rho=0.2 for 20%% noise with the '
        'noisy_* methods; give such runs their own --work-dir, since '
        '--reuse matches runs by config file and seed only')
    args = parser.parse_args(argv)
    malformed = [opt for opt in args.cfg_options if '=' not in opt]
    if malformed:
        parser.error(f'--cfg-options takes KEY=VALUE pairs, got {malformed}')
    methods = DATASETS[args.dataset]['methods']
    if args.methods is None:
        args.methods = list(DATASETS[args.dataset]['default'])
    unknown = [m for m in args.methods if m not in methods]
    if unknown:
        parser.error(f'--methods: {unknown} are not methods of --dataset '
                     f'{args.dataset} (choose from {", ".join(methods)})')
    if args.epochs is not None and args.epochs < 1:
        parser.error(f'--epochs must be >= 1, got {args.epochs}')
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}')
    if args.progress_interval < 0:
        parser.error('--progress-interval must be >= 0, got '
                     f'{args.progress_interval}')
    if args.work_dir is None:
        args.work_dir = osp.join('work_dirs', f'{args.dataset}_benchmark')
    return args


@contextlib.contextmanager
def dataset_methods(dataset):
    """Point :data:`METHODS` (which the helpers read) at the methods of
    ``dataset`` while a benchmark runs."""
    global METHODS
    saved, METHODS = METHODS, DATASETS[dataset]['methods']
    try:
        yield METHODS
    finally:
        METHODS = saved


def final_metrics(work_dir):
    """The last evaluation logged by a run, keys without the default
    ``multi-label/`` prefix (other prefixes stay: ``least5/f1_least``), and
    ``sec_per_iter``: the median training iteration time of the run."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')))
    if not logs:
        raise FileNotFoundError(f'no vis_data/scalars.json under {work_dir}')
    evaluations, iteration_times = [], []
    with open(logs[-1]) as f:
        for line in f:
            record = json.loads(line)
            if 'multi-label/mAP' in record:
                evaluations.append(record)
            elif 'loss' in record and 'time' in record:
                iteration_times.append(record['time'])
    if not evaluations:
        raise RuntimeError(f'{logs[-1]} holds no evaluation')
    prefix = 'multi-label/'
    metrics = {
        key[len(prefix):] if key.startswith(prefix) else key: value
        for key, value in evaluations[-1].items()
    }
    metrics['sec_per_iter'] = float(np.median(iteration_times))
    # BalanceMix: the refinement pass + GMM fit after each post-warm-up
    # epoch (outside the iteration times)
    refinements = sorted(
        glob.glob(osp.join(work_dir, '*', 'label_refinement.json')))
    if refinements:
        with open(refinements[-1]) as f:
            history = json.load(f)['refinements']
        if history:
            metrics['refine_sec'] = float(np.mean(
                [r['pass_seconds'] + r['gmm_seconds'] for r in history]))
    return metrics


def finished_run(method, seed, work_dir):
    """The method whose finished run of ``method``'s config and seed has its
    result in ``work_dir``: ``method`` itself, or one with the same config
    (None when there is none)."""
    suffix = f'_seed{seed}.json'
    if osp.exists(osp.join(work_dir, method + suffix)):
        return method
    for path in sorted(glob.glob(osp.join(work_dir, '*' + suffix))):
        other = osp.basename(path)[:-len(suffix)]
        if other in METHODS and config_key(other) == config_key(method):
            return other
    return None


def record_same_run(method, seed, metrics, run_method, work_dir):
    """Write the result of ``run_method``'s run (same config) under
    ``method``'s name, marked ``same_run_as``."""
    metrics = dict(metrics, same_run_as=metrics.get('same_run_as', run_method))
    with open(osp.join(work_dir, f'{method}_seed{seed}.json'), 'w') as f:
        json.dump(metrics, f)
    print(f'[{method} seed {seed}] the run of {metrics["same_run_as"]} '
          '(same config)', flush=True)
    return metrics


def train(method, seed, args, threads=None):
    work_dir = osp.join(args.work_dir, f'{method}_seed{seed}')
    done = work_dir + '.json'
    found = finished_run(method, seed, args.work_dir) if args.reuse else None
    if found:
        with open(osp.join(args.work_dir, f'{found}_seed{seed}.json')) as f:
            metrics = json.load(f)
        if found != method:
            return record_same_run(method, seed, metrics, found,
                                   args.work_dir)
        print(f'[{method} seed {seed}] reused {done}', flush=True)
        return metrics
    options = [f'randomness.seed={seed}']
    if args.epochs:
        options += [
            f'train_cfg.max_epochs={args.epochs}',
            f'train_cfg.val_interval={args.epochs}'
        ]
    options += args.cfg_options
    start = time.time()
    name = f'{method} seed {seed}'
    progress = Progress(name, max_epochs(METHODS[method], options),
                        args.progress_interval)
    run_train(METHODS[method], work_dir,
              osp.join(args.work_dir, f'{method}_seed{seed}.log'), name,
              threads, ['--cfg-options', *options], on_line=progress.feed)
    metrics = final_metrics(work_dir)
    metrics['minutes'] = (time.time() - start) / 60
    with open(done, 'w') as f:
        json.dump(metrics, f)
    print(f'[{method} seed {seed}] mAP {metrics["mAP"]:.2f}, few-shot '
          f'{metrics.get("mAP_few", float("nan")):.2f} '
          f'({metrics["minutes"]:.1f} min)', flush=True)
    return metrics


class Progress:
    """Compact progress of one training run, from its log lines: every
    ``interval`` seconds ``[NAME] epoch e/E, ~m min left`` (the time left
    extrapolated from the time so far and the fraction of iterations done),
    and each validation's mAP as it comes."""

    TRAIN = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]')
    VAL_MAP = re.compile(r'Epoch\(val\)\s*\[(\d+)\].*?multi-label/mAP: '
                         r'([\d.]+)')

    def __init__(self, name, max_epochs, interval=PROGRESS_INTERVAL,
                 clock=time.monotonic, out=None):
        self.name = name
        self.max_epochs = max_epochs
        self.interval = interval
        self.clock = clock
        self.out = out or (lambda text: print(text, flush=True))
        self.start = clock()
        self.last_print = None
        self.done = None  # fraction of the training iterations done
        self.epoch = None

    def feed(self, line):
        match = self.TRAIN.search(line)
        if match:
            epoch, step, steps = (int(g) for g in match.groups())
            self.epoch = epoch
            self.done = min(((epoch - 1) + step / steps) / self.max_epochs,
                            1.) if self.max_epochs else None
            now = self.clock()
            if self.last_print is None or \
                    now - self.last_print >= self.interval:
                self.last_print = now
                self.out(self.message(now))
            return
        match = self.VAL_MAP.search(line)
        if match:
            self.out(f'[{self.name}] epoch {match.group(1)}/'
                     f'{self.max_epochs}: validation mAP {match.group(2)}')

    def message(self, now=None):
        now = self.clock() if now is None else now
        text = f'[{self.name}] epoch {self.epoch}/{self.max_epochs}'
        if self.done:
            left = (now - self.start) * (1 - self.done) / self.done / 60
            text += f', ~{left:.1f} min left'
        return text


@functools.lru_cache(maxsize=None)
def load_config(config):
    """The resolved config of ``config`` (a path under the repository),
    loaded once per benchmark."""
    from mmengine.config import Config
    return Config.fromfile(osp.join(REPO, config))


def config_key(method):
    """The method's resolved config as text: methods with the same key
    (``pal30_full``, ``pal60_full`` and ``spl_full``) train the same run."""
    return json.dumps(load_config(METHODS[method]).to_dict(),
                      sort_keys=True, default=repr)


def same_runs(methods):
    """``{method: the first of methods with its config}``: one run serves
    every method of a group, under each method's name."""
    first = {}
    return {method: first.setdefault(config_key(method), method)
            for method in methods}


def max_epochs(config, options=()):
    """``train_cfg.max_epochs`` of a config after ``--cfg-options`` pairs."""
    for option in reversed(list(options)):
        key, _, value = option.partition('=')
        if key == 'train_cfg.max_epochs':
            return int(value)
    return int(load_config(config).train_cfg.max_epochs)


def run_train(config, work_dir, log_path, name, threads=None, extra=(),
              on_line=None):
    """``tools/train.py CONFIG --work-dir WORK_DIR EXTRA`` in a subprocess
    (``threads`` torch threads), its output in ``log_path`` and, line by
    line, passed to ``on_line`` (progress)."""
    command = [
        sys.executable,
        osp.join(REPO, 'tools/train.py'),
        osp.join(REPO, config), '--work-dir', work_dir, *extra
    ]
    print(f'[{name}] {" ".join(command)}', flush=True)
    env = dict(os.environ)
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    os.makedirs(osp.dirname(osp.abspath(log_path)), exist_ok=True)
    with open(log_path, 'w') as log, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, text=True, bufsize=1) as process:
        for line in process.stdout:
            log.write(line)
            if on_line is not None:
                on_line(line)
        code = process.wait()
    if code != 0:
        print(f'[{name}] failed with exit code {code}; its output: {log_path}',
              flush=True)
        raise subprocess.CalledProcessError(code, command)


def refines_labels(method):
    """Whether the method's config runs a label-refinement pass after every
    post-warm-up epoch (a ``LabelRefinementHook``)."""
    cfg = load_config(METHODS[method])
    return any(hook['type'] == 'LabelRefinementHook'
               for hook in cfg.get('custom_hooks', []))


def embedded_weights(method):
    """The ``embedded://`` checkpoints the method's config starts from."""
    cfg = load_config(METHODS[method])
    found = []

    def visit(node):
        if isinstance(node, dict):
            checkpoint = node.get('checkpoint')
            if isinstance(checkpoint, str) and \
                    checkpoint.startswith('embedded://'):
                found.append(checkpoint[len('embedded://'):])
            for value in node.values():
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)

    visit(cfg.get('model', {}))
    return sorted(set(found))


def ensure_pretrained(methods, interval=PROGRESS_INTERVAL):
    """Build the ``embedded://`` backbones the methods start from, once,
    before the runs (cached by mlimb_mm.utils.embedded_weights; the printed
    digits backbone takes about 3 minutes)."""
    from mlimb_mm.utils.embedded_weights import (embedded_config,
                                                 ensure_embedded)
    names = sorted({name for m in methods for name in embedded_weights(m)})
    for name in names:
        progress = Progress(f'pretrain {name}',
                            max_epochs(embedded_config(name)), interval)
        ensure_embedded(name, on_line=progress.feed)
    return names


def split_by_setting(results, settings=SETTINGS):
    """``{setting title: {method: runs}}`` in ``settings`` order."""
    tables = {title: {} for _, title in settings}
    by_length = sorted(settings, key=lambda item: -len(item[0]))
    for method, runs in results.items():
        title = next(t for prefix, t in by_length if method.startswith(prefix))
        tables[title][method] = runs
    return {title: rows for title, rows in tables.items() if rows}


def format_cell(values):
    values = np.asarray(values, dtype=float)
    if np.isnan(values).all():
        return '-'
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{values.mean():.2f} ± {values.std(ddof=1):.2f}'


def format_table(results, seeds, setting='long-tailed digits',
                 cfg_options=()):
    # the metric columns that some run reports
    columns = [(name, key) for name, key in COLUMNS
               if any(key in run for runs in results.values() for run in runs)]
    first = next(iter(results))
    header = ['method'] + [name for name, _ in columns] + [
        'min/run', f'time / {first}', 's/iter', f'step time / {first}',
        'refinement s/epoch'
    ]
    base_step = np.mean([run['sec_per_iter'] for run in results[first]])
    base_minutes = np.mean([run['minutes'] for run in results[first]])
    rows = [header, ['---'] * len(header)]
    for method, runs in results.items():
        row = [method]
        for _, key in columns:
            row.append(format_cell([run.get(key, np.nan) for run in runs]))
        minutes = np.mean([run['minutes'] for run in runs])
        row += [f'{minutes:.1f}', f'{minutes / base_minutes:.2f}']
        step = np.mean([run['sec_per_iter'] for run in runs])
        row += [f'{step:.3f}', f'{step / base_step:.2f}']
        refine = [run['refine_sec'] for run in runs if 'refine_sec' in run]
        row.append(f'{np.mean(refine):.2f}' if refine else '-')
        rows.append(row)
    lines = ['| ' + ' | '.join(row) + ' |' for row in rows]
    # the setting is the configs' own: say what --cfg-options changed in it
    overridden = (f' as in the configs, overridden by --cfg-options '
                  f'{" ".join(cfg_options)}' if cfg_options else '')
    title = (f'{setting[0].upper()}{setting[1:]}{overridden}: clean test '
             f'set, {len(seeds)} seed(s) {seeds}; metrics in %; s/iter is '
             'the median '
             'training iteration time logged by the runs (same machine, '
             'same --jobs); the ratios are to the first method (time: '
             'the whole run, passes included); refinement '
             's/epoch: BalanceMix\'s pass over the training set and GMM '
             'fit after each post-warm-up epoch')
    return '\n'.join([title] + lines)


def main(argv=None):
    args = parse_args(argv)
    with dataset_methods(args.dataset):
        return run_benchmark(args)


def run_benchmark(args):
    os.makedirs(args.work_dir, exist_ok=True)
    # methods with the same resolved config share one run per seed
    run_of = same_runs(args.methods)
    runs = [(method, seed) for method in args.methods for seed in args.seeds
            if run_of[method] == method]
    # longest first, so that parallel jobs end together: the runs with
    # BalanceMix's refinement pass take about twice as long as the others
    refining = {method: refines_labels(method) for method in args.methods}
    runs.sort(key=lambda run: not refining[run[0]])
    threads = max((os.cpu_count() or 1) // args.jobs, 1) \
        if args.jobs > 1 else None
    ensure_pretrained(args.methods, args.progress_interval)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        metrics = list(
            pool.map(lambda run: train(*run, args, threads), runs))
    metrics = dict(zip(runs, metrics))
    results = {
        method: [
            metrics[method, seed] if run_of[method] == method else
            record_same_run(method, seed, metrics[run_of[method], seed],
                            run_of[method], args.work_dir)
            for seed in args.seeds
        ]
        for method in args.methods
    }
    table = '\n\n'.join(
        format_table(rows, args.seeds, setting, args.cfg_options)
        for setting, rows in split_by_setting(
            results, DATASETS[args.dataset]['settings']).items())
    print('\n' + table)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    return results


if __name__ == '__main__':
    main()
