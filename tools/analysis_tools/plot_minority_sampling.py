"""Plot how much BalanceMix's minority sampler over-samples each class over
training (the BalanceMix paper's Figure 6: minority classes are strongly
over-sampled at first, less as their predictions become confident).

    python tools/analysis_tools/plot_minority_sampling.py \\
        WORK_DIR/TIMESTAMP/balancemix.json [--out sampling.png]

``balancemix.json`` is written by ``BalanceMixHook`` into the run's log
folder after every epoch. Each class's curve is its sampling mass under
the minority sampler (the expected share of minority draws that show the
class, Eq. (4)) divided by its mass under uniform sampling: 1 is no
over-sampling.
"""
import argparse
import json
import os.path as osp

import numpy as np
from class_curves import plot_class_curves


def oversampling(record: dict) -> np.ndarray:
    """``(epochs, K)`` class mass of the minority sampler over the uniform
    class mass (1 where a class has no positive)."""
    mass = np.asarray(record['class_mass'], dtype=float)
    uniform = np.asarray(record['uniform_class_mass'], dtype=float)
    return mass / np.where(uniform > 0, uniform, np.inf) + (uniform <= 0)


def plot_sampling(record: dict):
    """A figure of the over-sampling factors; classes ordered head to tail
    by their uniform mass and coloured from head (dark) to tail (light)."""
    factor = oversampling(record)
    uniform = np.asarray(record['uniform_class_mass'], dtype=float)
    epochs = np.asarray(record['epochs'])
    fig, ax = plot_class_curves(epochs, factor, record['classes'],
                                np.argsort(-uniform),
                                'class mass / uniform class mass',
                                'BalanceMix minority sampler (Eq. 4)')
    ax.axhline(1.0, color='grey', lw=0.8, ls='--')
    fig.tight_layout()
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('history_json')
    parser.add_argument('--out', help='PNG path (default: beside the json)')
    args = parser.parse_args(argv)
    with open(args.history_json) as f:
        history = json.load(f)
    if 'minority_sampling' not in history:
        raise KeyError(f'{args.history_json} has no minority_sampling: the '
                       'run did not use the minority sampler.')
    fig = plot_sampling(history['minority_sampling'])
    out = args.out or osp.splitext(args.history_json)[0] + '_sampling.png'
    fig.savefig(out, dpi=120)
    print(f'saved {out}')
    return out


if __name__ == '__main__':
    main()
