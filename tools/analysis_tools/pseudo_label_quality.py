"""Tabulate the pseudo labels' quality over training, overall and per class
group, from one or more runs' ``pseudo_labels.json`` (e.g. the seeds of a
benchmark row: their mean and standard deviation per epoch).

    python tools/analysis_tools/pseudo_label_quality.py \\
        WORK_DIR/METHOD_seed*/TIMESTAMP/pseudo_labels.json [--every 5]

``PseudoLabelHook`` writes the file into the run's log folder after every
epoch. Accuracy is that of ``pseudo >= threshold`` on the hidden labels
(the unknown labels whose clean label the dataset wrapper kept); "hidden +"
and "hidden -" are the mean pseudo label on the hidden positives and on
the hidden negatives.
"""
import argparse
import json

import numpy as np

#: (column title, key of an epoch's summary or of one of its groups)
COLUMNS = [('mean', 'mean'), ('accuracy', 'accuracy'),
           ('hidden +', 'mean_on_hidden_positives'),
           ('hidden -', 'mean_on_hidden_negatives')]


def epoch_rows(histories, every: int = 1):
    """``[(epoch, {column: [value per run]})]`` for the epochs every run
    has (every ``every``-th one, and the last), columns overall and
    ``GROUP accuracy`` per class group."""
    by_epoch = [{e['epoch']: e for e in h['epochs']} for h in histories]
    common = sorted(set.intersection(*(set(e) for e in by_epoch)))
    if not common:
        raise ValueError('pseudo_label_quality: the runs have no epoch in '
                         'common.')
    chosen = [e for e in common if e % every == 0 or e == common[-1]]
    rows = []
    for epoch in chosen:
        summaries = [runs[epoch] for runs in by_epoch]
        values = {title: [s.get(key) for s in summaries]
                  for title, key in COLUMNS}
        for group in summaries[0].get('groups') or {}:
            values[f'{group} accuracy'] = [
                (s.get('groups') or {}).get(group, {}).get('accuracy')
                for s in summaries
            ]
        rows.append((epoch, values))
    return rows


def format_value(values) -> str:
    """``mean ± std`` of the defined values (one value alone; '-' when
    none is defined)."""
    defined = np.asarray([v for v in values if v is not None], float)
    if defined.size == 0:
        return '-'
    if defined.size == 1:
        return f'{defined[0]:.3f}'
    return f'{defined.mean():.3f} ± {defined.std():.3f}'


def format_table(rows) -> str:
    titles = list(rows[0][1])
    lines = ['| epoch | ' + ' | '.join(titles) + ' |',
             '| --- ' * (len(titles) + 1) + '|']
    for epoch, values in rows:
        lines.append(f'| {epoch} | ' + ' | '.join(
            format_value(values[t]) for t in titles) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('histories', nargs='+',
                        help='pseudo_labels.json of each run')
    parser.add_argument('--every', type=int, default=1,
                        help='show every N-th epoch (and the last)')
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error('--every must be >= 1')
    histories = []
    for path in args.histories:
        with open(path) as f:
            history = json.load(f)
        if 'epochs' not in history:
            raise ValueError(f'{path}: not a PseudoLabelHook history (no '
                             '"epochs").')
        histories.append(history)
    table = format_table(epoch_rows(histories, args.every))
    print(f'{len(histories)} run(s), threshold '
          f'{histories[0].get("threshold")}, groups '
          f'{histories[0].get("group_thresholds")}\n')
    print(table)
    return table


if __name__ == '__main__':
    main()
