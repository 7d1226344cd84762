"""Label statistics of the training set of dataset configs, next to COCO
2017's published figures: per-class counts, positives per image, the head
and the rarest class, co-occurrence strength, the many / medium / few
groups of the config's metric, and what the label wrappers did (realised
noise and missing rates, from their ``report()``).

    python tools/dataset_converters/label_statistics.py \\
        configs/_base_/datasets/cocolike_mlt.py [CONFIG ...] \\
        [--split train|test] [--per-class] [--json OUT]

A CONFIG is a path or the name of a file in ``configs/_base_/datasets/``
(``cocolike_mlt``); ``--cocolike`` takes every ``cocolike*`` setting. Only
labels are read: no image is loaded or rendered.

Co-occurrence: for every pair of classes (i, j) with positives, the
standardised phi coefficient ``z = sqrt(N) * phi_ij`` (approximately N(0, 1)
when the two classes are independent, for the pairs expected together at
least twice, ``n_i n_j / N >= 2``, the pairs counted); the report gives the
share of pairs with ``z > 3`` (co-occurring more than chance at 3 sigma)
and, as the reference of no co-occurrence, the same share after shuffling
every class's column independently (same class counts, pairs independent),
plus the lift ``n_ij N / (n_i n_j)`` of the most associated of those pairs.
"""
import argparse
import glob
import json
import os.path as osp
import sys

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
DATASET_CONFIGS = osp.join(REPO, 'configs', '_base_', 'datasets')

#: COCO 2017 train, published / approximate: 118,287 images, 80 classes,
#: ~2.9 positive categories per image (the figure usually quoted for the
#: classification labels), 'person' in 64,115 images (~54.2%), the rarest
#: class 'hair drier' in 189 images (~0.16%; 'toaster' 217).
COCO_2017 = dict(
    images=118287,
    classes=80,
    positives_per_image=2.9,
    head='person',
    head_images=64115,
    rarest='hair drier',
    rarest_images=189,
)


def cooccurrence(positives: np.ndarray, rng: np.random.Generator,
                 top: int = 3, min_expected: float = 2.) -> dict:
    """Co-occurrence strength of a ``(N, K)`` bool matrix (see the module
    docstring)."""
    num = len(positives)
    x = positives.astype(np.float64)
    counts = x.sum(0)
    valid = (counts > 0) & (counts < num)
    x = x[:, valid]
    counts = counts[valid]
    names = np.flatnonzero(valid)

    def z_scores(matrix):
        joint = matrix.T @ matrix
        expected = np.outer(counts, counts) / num
        spread = np.sqrt(counts * (num - counts))
        phi = (num * joint - np.outer(counts, counts)) / np.outer(
            spread, spread)
        z = np.sqrt(num) * phi
        rows, cols = np.triu_indices(len(counts), 1)
        # pairs expected together at least min_expected times if independent
        # (the normal approximation of z fails for rarer pairs)
        keep = expected[rows, cols] >= min_expected
        rows, cols = rows[keep], cols[keep]
        return (z[rows, cols], joint[rows, cols], expected[rows, cols],
                (rows, cols))

    z, joint, expected, (rows, cols) = z_scores(x)
    shuffled = np.stack([rng.permutation(column) for column in x.T], 1)
    z_ref = z_scores(shuffled)[0]
    # the most associated pairs among those above chance
    order = [p for p in np.argsort(-z, kind='stable')[:top] if z[p] > 3]
    return dict(
        num_pairs=int(len(z)),
        share_above_chance=float((z > 3).mean()) if len(z) else 0.,
        share_above_chance_shuffled=float(
            (z_ref > 3).mean()) if len(z) else 0.,
        pairs_together=int((joint > 0).sum()),
        top_pairs=[
            dict(classes=[int(names[rows[p]]), int(names[cols[p]])],
                 together=int(joint[p]),
                 lift=float(joint[p] / expected[p]), z=float(z[p]))
            for p in order
        ])


def label_statistics(labels: np.ndarray, clean: np.ndarray = None,
                     seed: int = 0) -> dict:
    """Statistics of ``(N, K)`` tri-state labels (1 / 0 / -1) and, when
    given, of their clean version: counts, positives per image, head and
    rarest class, imbalance, co-occurrence, unknown and wrong labels."""
    labels = np.asarray(labels)
    positives = labels == 1
    num, num_classes = labels.shape
    counts = positives.sum(0)
    per_image = positives.sum(1)
    nonzero = counts[counts > 0]
    order = np.argsort(-counts, kind='stable')
    stats = dict(
        images=int(num),
        classes=int(num_classes),
        positives_per_image=float(per_image.mean()),
        positives_per_image_std=float(per_image.std()),
        max_positives_per_image=int(per_image.max()) if num else 0,
        images_without_positive=int((per_image == 0).sum()),
        positives_histogram=np.bincount(per_image).tolist(),
        class_counts=counts.tolist(),
        head=int(order[0]),
        head_fraction=float(counts[order[0]] / num),
        rarest=int(order[-1]),
        rarest_fraction=float(counts[order[-1]] / num),
        empty_classes=int((counts == 0).sum()),
        imbalance_ratio=(float(nonzero.max() / nonzero.min())
                         if len(nonzero) else None),
        unknown_fraction=float((labels == -1).mean()),
        cooccurrence=cooccurrence(positives, np.random.default_rng(seed)),
    )
    if clean is not None:
        clean = np.asarray(clean)
        known = (labels != -1) & (clean != -1)
        stats['clean_positives_per_image'] = float((clean == 1).sum(1).mean())
        stats['clean_class_counts'] = (clean == 1).sum(0).tolist()
        stats['wrong_label_fraction'] = float(
            (known & (labels != clean)).sum() / max(known.sum(), 1))
        stats['wrong_positive_fraction'] = float(
            (positives & (clean == 0)).sum() / max(positives.sum(), 1))
    return stats


def wrapper_summaries(dataset) -> list:
    """What each label wrapper around the dataset did, outermost first."""
    summaries = []
    while hasattr(dataset, 'report') and hasattr(dataset, 'dataset'):
        report = dataset.report()
        name = report['builder']
        entry = dict(builder=name, samples=report['num_samples'],
                     source_samples=report['num_source_samples'])
        if name == 'NoisyLabelDataset':
            noise = report[report['noise_type']]
            entry.update(noise_type=report['noise_type'], rho=report['rho'])
            for key in ('realised_rate', 'realised_positive_rate',
                        'realised_negative_rate', 'hidden_positive_rate'):
                if noise.get(key) is not None:
                    entry[key] = noise[key]
        elif name == 'MissingLabelDataset':
            for key in ('mode', 'keep_ratio', 'missing_rate',
                        'requested_positive_fraction',
                        'realised_positive_fraction',
                        'requested_negative_fraction',
                        'realised_negative_fraction',
                        'num_images_lost_all_positives'):
                entry[key] = report[key]
        elif name == 'LongTailSubsetDataset':
            for key in ('alpha', 'max_size', 'min_size', 'imbalance_ratio',
                        'target_imbalance_ratio', 'group_thresholds',
                        'group_sizes', 'max_abs_deviation'):
                if key in report:
                    entry[key] = report[key]
        summaries.append(entry)
        dataset = dataset.dataset
    return summaries


def metric_groups(cfg) -> dict:
    """The many / medium / few groups of the config's
    ``LongTailMultiLabelMetric``: its thresholds and the class counts of its
    ``train_dataset`` (None when the config has no such metric)."""
    from mmpretrain.registry import DATASETS

    from mlimb_mm.evaluation.metrics.class_counts import \
        count_dataset_classes
    from mlimb_mm.evaluation.metrics.long_tail_map import long_tail_groups
    evaluators = cfg.get('val_evaluator', [])
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    for metric in evaluators:
        if metric.get('type') != 'LongTailMultiLabelMetric':
            continue
        thresholds = tuple(metric.get('group_thresholds', (20, 100)))
        train = metric.get('train_dataset')
        if train is None:
            return None
        counts = count_dataset_classes(DATASETS.build(train))
        groups = long_tail_groups(counts, thresholds)
        return dict(thresholds=list(thresholds),
                    sizes={g: int(len(m)) for g, m in groups.items()},
                    members={g: m.tolist() for g, m in groups.items()})
    return None


def resolve_config(name: str) -> str:
    if osp.isfile(name):
        return name
    candidate = osp.join(DATASET_CONFIGS, name if name.endswith('.py') else
                         name + '.py')
    if osp.isfile(candidate):
        return candidate
    raise SystemExit(f'label_statistics: no config {name!r} (neither a file '
                     f'nor a name in {osp.relpath(DATASET_CONFIGS, REPO)})')


def setting_statistics(config: str, split: str = 'train',
                       seed: int = 0) -> dict:
    """Build the ``split`` dataset of a config (labels only) and gather its
    statistics, its wrappers' summaries and the metric's groups."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS

    import mlimb_mm  # noqa: F401
    from mlimb_mm.datasets.wrappers.base_label_wrapper import (
        dataset_clean_labels, dataset_tristate_labels)
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    loader = 'train_dataloader' if split == 'train' else 'test_dataloader'
    if loader not in cfg:
        raise SystemExit(f'label_statistics: {config} has no {loader}.')
    dataset = DATASETS.build(cfg[loader]['dataset'])
    labels = dataset_tristate_labels(dataset)
    clean = dataset_clean_labels(dataset)
    stats = label_statistics(labels, clean, seed)
    stats['config'] = osp.relpath(osp.abspath(config), REPO)
    stats['split'] = split
    stats['class_names'] = list(dataset.metainfo.get('classes') or [])
    stats['wrappers'] = wrapper_summaries(dataset)
    stats['groups'] = metric_groups(cfg) if split == 'train' else None
    return stats


def _pct(value, digits=2):
    return '-' if value is None else f'{100 * value:.{digits}f}'


def _wrapper_cell(summaries) -> str:
    parts = []
    for entry in summaries:
        if entry['builder'] == 'NoisyLabelDataset':
            if entry['noise_type'] == 'single_positive':
                parts.append('single positive: '
                             f"{_pct(entry['hidden_positive_rate'], 1)}% of "
                             'positives hidden')
            else:
                parts.append(f"{entry['noise_type']} "
                             f"{_pct(entry['realised_rate'], 1)}%")
        elif entry['builder'] == 'MissingLabelDataset':
            kept_pos = entry['realised_positive_fraction']
            kept_neg = entry['realised_negative_fraction']
            parts.append(f"{entry['mode']}: pos kept {_pct(kept_pos, 1)}%, "
                         f'neg kept {_pct(kept_neg, 1)}%')
        elif entry['builder'] == 'LongTailSubsetDataset':
            parts.append(f"MLT subset {entry['samples']} of "
                         f"{entry['source_samples']}")
    return '; '.join(parts) or 'clean'


def format_report(all_stats, per_class=False) -> str:
    """Markdown tables: one row per setting, then COCO 2017."""
    header = [
        'setting', 'images', 'pos/img', 'max', 'head (% imgs)',
        'rarest (% imgs)', 'imbalance', 'pairs > chance (shuffled)',
        'unknown %', 'wrong % (of pos)', 'groups many/med/few (thresholds)',
        'labels'
    ]
    rows = [header, ['---'] * len(header)]
    for s in all_stats:
        names = s['class_names']

        def name(k):
            return names[k] if k < len(names) else str(k)

        co = s['cooccurrence']
        groups = s['groups']
        group_cell = '-' if groups is None else (
            '/'.join(str(groups['sizes'][g])
                     for g in ('many', 'medium', 'few')) +
            ' ({}, {})'.format(*groups['thresholds']))
        rows.append([
            osp.splitext(osp.basename(s['config']))[0] +
            ('' if s['split'] == 'train' else f" ({s['split']})"),
            str(s['images']),
            f"{s['positives_per_image']:.2f}",
            str(s['max_positives_per_image']),
            f"{name(s['head'])} ({_pct(s['head_fraction'], 1)})",
            f"{name(s['rarest'])} ({_pct(s['rarest_fraction'])})",
            '-' if s['imbalance_ratio'] is None else
            f"{s['imbalance_ratio']:.0f}",
            f"{_pct(co['share_above_chance'], 1)}% "
            f"({_pct(co['share_above_chance_shuffled'], 1)}%)",
            _pct(s['unknown_fraction'], 1),
            _pct(s.get('wrong_label_fraction'), 1) + ' (' +
            _pct(s.get('wrong_positive_fraction'), 1) + ')',
            group_cell,
            _wrapper_cell(s['wrappers']),
        ])
    coco = COCO_2017
    rows.append([
        'COCO 2017 train (published / approximate)', f"{coco['images']:,}",
        f"~{coco['positives_per_image']}", '-',
        f"{coco['head']} (~{100 * coco['head_images'] / coco['images']:.1f})",
        f"{coco['rarest']} "
        f"(~{100 * coco['rarest_images'] / coco['images']:.2f})",
        f"~{coco['head_images'] / coco['rarest_images']:.0f}", 'n/a', '0',
        '-', '-', 'clean'
    ])
    lines = ['| ' + ' | '.join(row) + ' |' for row in rows]
    out = [
        'Label statistics of the training sets (pos/img: known positives '
        'per image; pairs > chance: share of class pairs co-occurring more '
        'than chance at 3 sigma, in brackets after shuffling each class '
        'independently; wrong %: known labels that differ from the clean '
        'ones, in brackets the observed positives that are clean negatives; '
        'groups: the metric\'s many / medium / few classes by its '
        'training counts)', ''
    ] + lines
    for s in all_stats:
        names = s['class_names']
        counts = np.asarray(s['class_counts'])
        order = np.argsort(-counts, kind='stable')
        title = osp.splitext(osp.basename(s['config']))[0]
        hist = s['positives_histogram']
        out += [
            '', f"{title}: positives per image "
            f"{s['positives_per_image']:.2f} ± "
            f"{s['positives_per_image_std']:.2f}, histogram (0, 1, 2, ...) "
            f'{hist}'
        ]
        top = s['cooccurrence']['top_pairs']
        if top:
            out.append('  most associated pairs: ' + ', '.join(
                f"{names[p['classes'][0]]} + {names[p['classes'][1]]} "
                f"(together {p['together']}, lift {p['lift']:.1f})"
                for p in top))
        if per_class:
            out.append('  per class (head to tail): ' + ', '.join(
                f'{names[k]} {counts[k]}' for k in order))
        else:
            out.append('  class counts (head to tail): ' +
                       ' '.join(str(c) for c in counts[order]))
    return '\n'.join(out)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Label statistics of dataset configs next to COCO '
        '2017.')
    parser.add_argument(
        'configs', nargs='*',
        help='dataset configs (paths, or names in configs/_base_/datasets)')
    parser.add_argument(
        '--cocolike', action='store_true',
        help='every configs/_base_/datasets/cocolike*.py setting')
    parser.add_argument(
        '--split', choices=('train', 'test'), default='train',
        help='which split to describe (default: train)')
    parser.add_argument(
        '--per-class', action='store_true',
        help='print every class count with its name')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the shuffled co-occurrence reference')
    parser.add_argument('--json', help='also write the statistics here')
    args = parser.parse_args(argv)
    configs = [resolve_config(c) for c in args.configs]
    if args.cocolike:
        configs += sorted(
            glob.glob(osp.join(DATASET_CONFIGS, 'cocolike*.py')))
    if not configs:
        parser.error('give dataset configs or --cocolike')
    args.configs = configs
    return args


def main(argv=None):
    args = parse_args(argv)
    all_stats = [
        setting_statistics(config, args.split, args.seed)
        for config in args.configs
    ]
    print(format_report(all_stats, args.per_class))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(all_stats, f, indent=1)
    return all_stats


if __name__ == '__main__':
    main()
