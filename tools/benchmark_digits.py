"""The main job on the embedded data: train methods on the long-tailed
multi-label digits and print one table of their test metrics.

    python tools/benchmark_digits.py [--methods bce ...] [--seeds 0 1 2]
        [--epochs N] [--work-dir work_dirs/digits_benchmark]
        [--cfg-options KEY=VALUE ...]

Each (method, seed) is a plain ``tools/train.py`` run of the method's config
(so what is measured here is what users run); the final evaluation of each
run is read from its ``vis_data/scalars.json``. The table gives the mean
(and the standard deviation over seeds when there are several) of overall
and many / medium / few-shot mAP, macro F1 and F1 over the 3 least frequent
classes, in percent, plus the training time.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

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
}
#: the main job: BalanceMix against BCE in both noisy settings
DEFAULT_METHODS = [
    'noisy_bce', 'noisy_balancemix', 'noisy_flip_bce', 'noisy_flip_balancemix'
]
#: one table per training set, in this order; a method belongs to the
#: longest prefix it has
SETTINGS = [
    ('noisy_', 'noisy long-tailed digits, 40% mislabelling (Eq. 11)'),
    ('noisy_flip_', 'noisy long-tailed digits, 40% random flipping'),
    ('', 'long-tailed digits, clean labels'),
]
#: the noisy configs fine-tune the backbone pre-trained on printed digits
PRETRAIN_CONFIG = 'configs/pretrain/resnet18_printed_digits.py'
PRETRAINED_CHECKPOINT = 'epoch_25.pth'
COLUMNS = [('mAP', 'mAP'), ('many', 'mAP_many'), ('medium', 'mAP_medium'),
           ('few', 'mAP_few'), ('F1', 'f1'), ('R least-3', 'recall_least'),
           ('F1 least-3', 'f1_least'), ('exact match', 'exact_match')]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--methods', nargs='+', default=DEFAULT_METHODS,
        choices=list(METHODS))
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument(
        '--epochs', type=int, help='override the configs\' max_epochs')
    parser.add_argument(
        '--work-dir', default=osp.join('work_dirs', 'digits_benchmark'))
    parser.add_argument(
        '--pretrain-dir', default=osp.join('work_dirs',
                                           'pretrain_printed_digits'),
        help='where the printed-digits backbone of the noisy configs is '
        '(trained there first when missing)')
    parser.add_argument(
        '--reuse', action='store_true',
        help='keep the results of runs that finished before (their '
        'WORK_DIR/METHOD_seedN.json) instead of training them again')
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
        '--reuse matches runs by method and seed only')
    args = parser.parse_args(argv)
    malformed = [opt for opt in args.cfg_options if '=' not in opt]
    if malformed:
        parser.error(f'--cfg-options takes KEY=VALUE pairs, got {malformed}')
    return args


def final_metrics(work_dir):
    """The last evaluation logged by a run, keys without their prefix, and
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
    metrics = {
        key.split('/', 1)[-1]: value
        for key, value in evaluations[-1].items()
    }
    metrics['sec_per_iter'] = float(np.median(iteration_times))
    # BalanceMix: the refinement pass + GMM fit after each post-warm-up
    # epoch (outside the iteration times)
    refinements = sorted(glob.glob(osp.join(work_dir, '*', 'balancemix.json')))
    if refinements:
        with open(refinements[-1]) as f:
            history = json.load(f)['refinements']
        if history:
            metrics['refine_sec'] = float(np.mean(
                [r['pass_seconds'] + r['gmm_seconds'] for r in history]))
    return metrics


def train(method, seed, args, threads=None):
    work_dir = osp.join(args.work_dir, f'{method}_seed{seed}')
    done = work_dir + '.json'
    if args.reuse and osp.exists(done):
        with open(done) as f:
            metrics = json.load(f)
        print(f'[{method} seed {seed}] reused {done}', flush=True)
        return metrics
    options = [f'randomness.seed={seed}']
    if method.startswith('noisy_'):
        options.append('model.backbone.init_cfg.checkpoint=' +
                       pretrained_checkpoint(args))
    if args.epochs:
        options += [
            f'train_cfg.max_epochs={args.epochs}',
            f'train_cfg.val_interval={args.epochs}'
        ]
    options += args.cfg_options
    start = time.time()
    run_train(METHODS[method], work_dir,
              osp.join(args.work_dir, f'{method}_seed{seed}.log'),
              f'{method} seed {seed}', threads,
              ['--cfg-options', *options])
    metrics = final_metrics(work_dir)
    metrics['minutes'] = (time.time() - start) / 60
    with open(done, 'w') as f:
        json.dump(metrics, f)
    print(f'[{method} seed {seed}] mAP {metrics["mAP"]:.2f}, few-shot '
          f'{metrics.get("mAP_few", float("nan")):.2f} '
          f'({metrics["minutes"]:.1f} min)', flush=True)
    return metrics


def run_train(config, work_dir, log_path, name, threads=None, extra=()):
    """``tools/train.py CONFIG --work-dir WORK_DIR EXTRA`` in a subprocess
    (``threads`` torch threads), its output in ``log_path``."""
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
    with open(log_path, 'w') as log:
        subprocess.run(command, check=True, stdout=log,
                       stderr=subprocess.STDOUT, env=env)


def refines_labels(method):
    """Whether the method's config runs BalanceMix's refinement pass after
    every post-warm-up epoch (a ``BalanceMixHook`` with one of its label
    categories on)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, METHODS[method]))
    return any(
        hook['type'] == 'BalanceMixHook' and any(
            hook.get(key, True)
            for key in ('use_clean', 'use_relabel', 'use_ambiguous'))
        for hook in cfg.get('custom_hooks', []))


def pretrained_checkpoint(args):
    return osp.abspath(osp.join(args.pretrain_dir, PRETRAINED_CHECKPOINT))


def ensure_pretrained(args, threads=None):
    """Pre-train the printed-digits backbone once (about 3 minutes)."""
    checkpoint = pretrained_checkpoint(args)
    if osp.exists(checkpoint):
        return checkpoint
    run_train(PRETRAIN_CONFIG, args.pretrain_dir,
              osp.join(args.pretrain_dir, 'pretrain.log'), 'pretrain',
              threads)
    if not osp.exists(checkpoint):
        raise FileNotFoundError(f'pre-training wrote no {checkpoint}')
    return checkpoint


def split_by_setting(results):
    """``{setting title: {method: runs}}`` in :data:`SETTINGS` order."""
    tables = {title: {} for _, title in SETTINGS}
    by_length = sorted(SETTINGS, key=lambda item: -len(item[0]))
    for method, runs in results.items():
        title = next(t for prefix, t in by_length if method.startswith(prefix))
        tables[title][method] = runs
    return {title: rows for title, rows in tables.items() if rows}


def format_cell(values):
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{values.mean():.2f} ± {values.std(ddof=1):.2f}'


def format_table(results, seeds, setting='long-tailed digits',
                 cfg_options=()):
    header = ['method'] + [name for name, _ in COLUMNS] + [
        'min/run', 's/iter', f'step time / {next(iter(results))}',
        'refinement s/epoch'
    ]
    base_step = np.mean([run['sec_per_iter']
                         for run in next(iter(results.values()))])
    rows = [header, ['---'] * len(header)]
    for method, runs in results.items():
        row = [method]
        for _, key in COLUMNS:
            row.append(format_cell([run.get(key, np.nan) for run in runs]))
        row.append(f'{np.mean([run["minutes"] for run in runs]):.1f}')
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
             'same --jobs) and its ratio to the first method; refinement '
             's/epoch: BalanceMix\'s pass over the training set and GMM '
             'fit after each post-warm-up epoch')
    return '\n'.join([title] + lines)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    runs = [(method, seed) for method in args.methods for seed in args.seeds]
    # longest first, so that parallel jobs end together: the runs with
    # BalanceMix's refinement pass take about twice as long as the others
    refining = {method: refines_labels(method) for method in args.methods}
    runs.sort(key=lambda run: not refining[run[0]])
    threads = max((os.cpu_count() or 1) // args.jobs, 1) \
        if args.jobs > 1 else None
    if any(method.startswith('noisy_') for method in args.methods):
        ensure_pretrained(args, threads)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        metrics = list(
            pool.map(lambda run: train(*run, args, threads), runs))
    results = {method: [] for method in args.methods}
    for (method, _), run_metrics in zip(runs, metrics):
        results[method].append(run_metrics)
    table = '\n\n'.join(
        format_table(rows, args.seeds, setting, args.cfg_options)
        for setting, rows in split_by_setting(results).items())
    print('\n' + table)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    return results


if __name__ == '__main__':
    main()
