"""Where a label-refinement run's training labels ended up, against the
clean labels its noisy training set keeps: for each kind of observed label
(true positive, wrong positive, hidden positive, true negative) and class
group, the share trained as 1 or as 0 at full weight, and the share
down-weighted (BalanceMix's ambiguous labels).

    python tools/analysis_tools/refined_label_breakdown.py \\
        WORK_DIR/METHOD_seed0 [WORK_DIR/METHOD_seed1 ...] \\
        [--checkpoint epoch_60.pth] [--group-thresholds 13 100]

Reads each run's dumped config (``WORK_DIR/*.py``), rebuilds its training
set (labels only, no image is drawn) and the label store of the checkpoint
(default: the run's ``last_checkpoint``). Groups split the classes by their
clean training count as the long-tail metrics do; the thresholds default
to those ``label_refinement.json`` recorded, else ``(20, 100)``. Several
runs give the mean and standard deviation of each share.
"""
import argparse
import glob
import json
import os.path as osp

import numpy as np
from pseudo_label_quality import format_value

#: the kinds of observed label: (name, observed value, clean value)
KINDS = [('true positive', 1, 1), ('wrong positive', 1, 0),
         ('hidden positive', 0, 1), ('true negative', 0, 0)]
#: the weight from which a label counts as trained at full weight
#: (float16 store)
FULL_WEIGHT = 1 - 1e-3


def breakdown(observed, clean, targets, weights, groups):
    """``{group: {kind: dict(count, as_1, as_0, down_weighted)}}`` plus, per
    group, ``positives``: the full-weight positives over the clean positives
    (``recall``) and their precision, beside the observed positives' own
    (``observed_recall``, ``observed_precision``). Unknown observed labels
    (-1) belong to no kind."""
    full = weights >= FULL_WEIGHT
    as_1, as_0 = full & (targets > 0.5), full & (targets <= 0.5)
    down = ~full
    table = {}
    for group, classes in groups.items():
        in_group = np.zeros(observed.shape[1], bool)
        in_group[classes] = True
        rows = {}
        for kind, obs_value, clean_value in KINDS:
            mask = (observed == obs_value) & (clean == clean_value) & in_group
            count = int(mask.sum())
            rows[kind] = dict(
                count=count,
                **{name: float((part & mask).sum() / count) if count else None
                   for name, part in (('as_1', as_1), ('as_0', as_0),
                                      ('down_weighted', down))})
        clean_pos = (clean == 1) & in_group
        trained_pos = as_1 & in_group
        observed_pos = (observed == 1) & in_group
        rows['positives'] = dict(
            recall=_ratio((trained_pos & clean_pos).sum(), clean_pos.sum()),
            precision=_ratio((trained_pos & clean_pos).sum(),
                             trained_pos.sum()),
            observed_recall=_ratio((observed_pos & clean_pos).sum(),
                                   clean_pos.sum()),
            observed_precision=_ratio((observed_pos & clean_pos).sum(),
                                      observed_pos.sum()))
        table[group] = rows
    return table


def _ratio(num, den):
    return float(num / den) if den else None


def load_run(work_dir, checkpoint=None):
    """``(observed, clean, targets, weights, recorded thresholds or None)``
    of one run."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS

    import mlimb_mm  # noqa: F401 (registers; allow-lists checkpoints)
    from mlimb_mm.datasets.wrappers.base_label_wrapper import (
        dataset_clean_labels, dataset_tristate_labels)
    configs = sorted(glob.glob(osp.join(work_dir, '*.py')))
    if len(configs) != 1:
        raise FileNotFoundError(f'{work_dir}: expected the one config '
                                f'tools/train.py dumps there, found {configs}')
    if checkpoint is None:
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            checkpoint = osp.basename(f.read().strip())
    state = torch.load(osp.join(work_dir, checkpoint), map_location='cpu')
    if 'label_store' not in state:
        raise KeyError(f'{osp.join(work_dir, checkpoint)} holds no label '
                       'store (was the run trained with a LabelStoreHook?)')
    fields = state['label_store']['fields']
    cfg = Config.fromfile(configs[0])
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    observed = np.asarray(dataset_tristate_labels(dataset))
    clean = np.asarray(dataset_clean_labels(dataset))
    targets = fields['targets'].float().numpy()
    weights = fields['weights'].float().numpy()
    if targets.shape != observed.shape:
        raise ValueError(f'{work_dir}: the label store holds {targets.shape} '
                         f'labels, the training set {observed.shape}')
    histories = glob.glob(osp.join(work_dir, '*', 'label_refinement.json'))
    thresholds = None
    if histories:
        with open(sorted(histories)[-1]) as f:
            thresholds = json.load(f).get('group_thresholds')
    return observed, clean, targets, weights, thresholds


def format_tables(tables) -> str:
    """Markdown: one row per (group, kind), shares as ``mean ± std`` over
    the runs."""
    lines = ['| group | labels | count | as 1 | as 0 | down-weighted |',
             '| --- | --- | --- | --- | --- | --- |']
    for group in tables[0]:
        for kind, _, _ in KINDS:
            cells = [format_value([t[group][kind][key] for t in tables])
                     for key in ('as_1', 'as_0', 'down_weighted')]
            count = tables[0][group][kind]['count']
            lines.append(f'| {group} | {kind} | {count} | ' +
                         ' | '.join(cells) + ' |')
    lines += ['', '| group | positives trained / clean | their precision | '
              'observed / clean | observed precision |',
              '| --- | --- | --- | --- | --- |']
    for group in tables[0]:
        cells = [format_value([t[group]['positives'][key] for t in tables])
                 for key in ('recall', 'precision', 'observed_recall',
                             'observed_precision')]
        lines.append(f'| {group} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dirs', nargs='+')
    parser.add_argument('--checkpoint', help='file name in each work dir '
                        '(default: its last_checkpoint)')
    parser.add_argument('--group-thresholds', nargs=2, type=int,
                        metavar=('LOW', 'HIGH'))
    args = parser.parse_args(argv)
    from mlimb_mm.datasets.label_utils import long_tail_groups
    tables = []
    for work_dir in args.work_dirs:
        observed, clean, targets, weights, recorded = load_run(
            work_dir, args.checkpoint)
        thresholds = args.group_thresholds or recorded or (20, 100)
        groups = dict(all=np.arange(observed.shape[1]),
                      **long_tail_groups((clean == 1).sum(0), thresholds))
        tables.append(breakdown(observed, clean, targets, weights, groups))
    print(format_tables(tables))
    return tables


if __name__ == '__main__':
    main()
