"""Plot PLM's target positive/negative ratios over training (the PLM
paper's Figure 2: head ratios fall, tail ratios rise).

    python tools/analysis_tools/plot_plm_ratios.py WORK_DIR/TIMESTAMP/plm_ratios.json \\
        [--out ratios.png] [--relative]

``plm_ratios.json`` is written by ``PLMHook`` into the run's log folder
after every epoch. ``--relative`` plots each ratio divided by its dataset
ratio, which puts all classes on one scale.
"""
import argparse
import json
import os.path as osp

import numpy as np
from class_curves import plot_class_curves


def plot_ratios(history: dict, relative: bool = False):
    """A figure of the ratio history; classes ordered head to tail by their
    dataset ratio and coloured from head (dark) to tail (light)."""
    ratios = np.asarray(history['ratios'], dtype=float)  # (epochs, K)
    dataset_ratio = np.asarray(history['dataset_ratio'], dtype=float)
    epochs = np.asarray(history['epochs'])
    if relative:
        ratios = ratios / np.where(dataset_ratio > 0, dataset_ratio, 1)
    fig, ax = plot_class_curves(
        epochs, ratios, history['classes'], np.argsort(-dataset_ratio),
        'target ratio / dataset ratio'
        if relative else 'target positive/negative ratio',
        f'PLM ratios (lambda={history["lam"]})')
    if not relative:
        ax.set_yscale('log')
    fig.tight_layout()
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('ratios_json')
    parser.add_argument('--out', help='PNG path (default: beside the json)')
    parser.add_argument('--relative', action='store_true')
    args = parser.parse_args(argv)
    with open(args.ratios_json) as f:
        history = json.load(f)
    fig = plot_ratios(history, relative=args.relative)
    out = args.out or osp.splitext(args.ratios_json)[0] + '.png'
    fig.savefig(out, dpi=120)
    print(f'saved {out}')
    return out


if __name__ == '__main__':
    main()
