"""The main job on the embedded data: train methods on the long-tailed
multi-label digits and print one table of their test metrics.

    python tools/benchmark_digits.py [--methods bce ...] [--seeds 0 1 2]
        [--epochs N] [--work-dir work_dirs/digits_benchmark]

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
}
DEFAULT_METHODS = ['bce']
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
        '--jobs', type=int, default=1,
        help='runs at the same time; each gets cores/jobs torch threads '
        '(small models on few cores train faster side by side than with '
        'all threads fighting over one run)')
    return parser.parse_args(argv)


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
    return metrics


def train(method, seed, args, threads=None):
    work_dir = osp.join(args.work_dir, f'{method}_seed{seed}')
    options = [f'randomness.seed={seed}']
    if args.epochs:
        options += [
            f'train_cfg.max_epochs={args.epochs}',
            f'train_cfg.val_interval={args.epochs}'
        ]
    command = [
        sys.executable,
        osp.join(REPO, 'tools/train.py'),
        osp.join(REPO, METHODS[method]), '--work-dir', work_dir,
        '--cfg-options', *options
    ]
    print(f'[{method} seed {seed}] {" ".join(command)}', flush=True)
    env = dict(os.environ)
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    start = time.time()
    with open(osp.join(args.work_dir, f'{method}_seed{seed}.log'), 'w') as log:
        subprocess.run(command, check=True, stdout=log,
                       stderr=subprocess.STDOUT, env=env)
    metrics = final_metrics(work_dir)
    metrics['minutes'] = (time.time() - start) / 60
    print(f'[{method} seed {seed}] mAP {metrics["mAP"]:.2f}, few-shot '
          f'{metrics.get("mAP_few", float("nan")):.2f} '
          f'({metrics["minutes"]:.1f} min)', flush=True)
    return metrics


def format_cell(values):
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{values.mean():.2f} ± {values.std(ddof=1):.2f}'


def format_table(results, seeds):
    header = ['method'] + [name for name, _ in COLUMNS] + [
        'min/run', 's/iter', f'step time / {next(iter(results))}'
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
        rows.append(row)
    lines = ['| ' + ' | '.join(row) + ' |' for row in rows]
    title = (f'Long-tailed multi-label digits, test set, {len(seeds)} '
             f'seed(s) {seeds}; metrics in %; s/iter is the median '
             'training iteration time logged by the runs (same machine, '
             'same --jobs), its ratio to the first method in the last '
             'column')
    return '\n'.join([title] + lines)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    runs = [(method, seed) for method in args.methods for seed in args.seeds]
    threads = max((os.cpu_count() or 1) // args.jobs, 1) \
        if args.jobs > 1 else None
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        metrics = list(
            pool.map(lambda run: train(*run, args, threads), runs))
    results = {method: [] for method in args.methods}
    for (method, _), run_metrics in zip(runs, metrics):
        results[method].append(run_metrics)
    table = format_table(results, args.seeds)
    print('\n' + table)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    return results


if __name__ == '__main__':
    main()
