"""Per-class AP against training class size, coloured by many / medium /
few-shot group: where a long-tail method gains or loses.

    python tools/test.py CONFIG CKPT --out preds.pkl
    python tools/analysis_tools/plot_per_class_ap.py preds.pkl CONFIG \\
        [--compare other_preds.pkl] [--out per_class_ap.png]

The training class counts come from the config's evaluator (its
``train_dataset`` or ``class_counts``), i.e. the same groups the metric
reports; ``--class-counts FILE`` (a JSON list) overrides them. With
``--compare``, bars show the AP difference of the first file over the
second.
"""
import argparse
import json
import os.path as osp
import pickle
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mlimb_mm.evaluation.metrics.class_counts import (  # noqa: E402
    sample_to_result, stack_results)
from mlimb_mm.evaluation.metrics.long_tail_map import (  # noqa: E402
    average_precision, long_tail_groups)

GROUP_COLOURS = dict(many='tab:blue', medium='tab:orange', few='tab:red')


def per_class_ap(predictions_file: str) -> np.ndarray:
    """Per-class AP in percent (NaN for a class without positives)."""
    with open(predictions_file, 'rb') as f:
        samples = pickle.load(f)
    scores, tristate = stack_results([sample_to_result(s) for s in samples])
    return 100 * average_precision(scores, tristate)


def config_class_counts(config_file: str):
    """Training class counts and group thresholds of a config's metric."""
    import mlimb_mm  # noqa: F401
    from mmengine.config import Config
    from mmpretrain.registry import METRICS
    cfg = Config.fromfile(config_file)
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    for evaluator in evaluators:
        if evaluator.get('type') == 'LongTailMultiLabelMetric':
            metric = METRICS.build(evaluator)
            return metric.get_train_class_counts(), metric.group_thresholds
    raise ValueError(f'{config_file} has no LongTailMultiLabelMetric.')


def plot_per_class_ap(ap, class_counts, thresholds, classes=None,
                      baseline_ap=None):
    order = np.argsort(-np.asarray(class_counts), kind='stable')
    groups = long_tail_groups(class_counts, thresholds)
    group_of = {int(k): name for name, idx in groups.items() for k in idx}
    values = ap if baseline_ap is None else ap - baseline_ap
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(order)), 4.5))
    ax.bar(np.arange(len(order)), values[order],
           color=[GROUP_COLOURS[group_of[int(k)]] for k in order])
    labels = [str(classes[k]) if classes else str(k) for k in order]
    ax.set_xticks(np.arange(len(order)), labels, rotation=90, fontsize=7)
    ax.set_xlabel('class, by training size (head first)')
    ax.set_ylabel('AP (%)' if baseline_ap is None else 'AP difference (%)')
    for name, colour in GROUP_COLOURS.items():
        ax.bar([], [], color=colour, label=f'{name} ({len(groups[name])})')
    ax.legend()
    fig.tight_layout()
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('predictions', help='pkl from tools/test.py --out')
    parser.add_argument('config', nargs='?', help='config of the run')
    parser.add_argument('--class-counts', help='JSON list of train counts')
    parser.add_argument('--thresholds', nargs=2, type=int, default=None)
    parser.add_argument('--compare', help='a second predictions pkl')
    parser.add_argument('--out', default='per_class_ap.png')
    args = parser.parse_args(argv)
    if args.class_counts:
        with open(args.class_counts) as f:
            counts = np.asarray(json.load(f))
        thresholds = (20, 100)
    elif args.config:
        counts, thresholds = config_class_counts(args.config)
    else:
        parser.error('give a config or --class-counts')
    thresholds = tuple(args.thresholds or thresholds)
    ap = per_class_ap(args.predictions)
    baseline = per_class_ap(args.compare) if args.compare else None
    fig = plot_per_class_ap(ap, counts, thresholds, baseline_ap=baseline)
    fig.savefig(args.out, dpi=120)
    print(f'saved {args.out}')
    return args.out


if __name__ == '__main__':
    main()
