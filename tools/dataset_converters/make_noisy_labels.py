"""Write a noisy copy of a multi-label annotation file: the synthetic label
noise of BalanceMix (Song et al. 2024, §Evaluation), built by
``NoisyLabelDataset``.

    python tools/dataset_converters/make_noisy_labels.py \\
        --source coco --data-root data/coco \\
        --ann-file annotations/instances_train2017.json \\
        --img-prefix train2017 \\
        --noise-type mislabel --rho 0.4 --seed 0 \\
        --out data/coco/noisy/train2017_mislabel40.json

Noise types: ``mislabel`` (class-dependent, Eq. (11)), ``flip`` (every known
label flipped with probability rho) and ``single_positive`` (one positive
kept per image, every other label unknown; rho unused).

The output is an OpenMMLab-2.0 JSON file that ``TriStateMultiLabelDataset``
reads (``gt_tristate`` holds the noisy labels, ``gt_tristate_clean`` the
clean ones); the JSON report (``--report``, default ``OUT`` with
``.report.json``) holds the requested and realised noise rates and, for
mislabel, the realised class-to-class matrix next to Eq. (11).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mlimb_mm.datasets.wrappers.cli import (  # noqa: E402
    add_output_args, add_source_args, run_builder, source_dataset_cfg)
from mlimb_mm.datasets.wrappers.noisy_labels import (  # noqa: E402
    EMPTY_IMAGE_MODES, NOISE_TYPES, check_noise_args)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Inject BalanceMix label noise (mislabel / flip / '
        'single positive) into a multi-label annotation file.')
    add_source_args(parser)
    group = parser.add_argument_group('noise')
    group.add_argument(
        '--noise-type', choices=NOISE_TYPES, default='mislabel',
        help='mislabel: Eq. (11) class-dependent; flip: every known label '
        'flipped with probability rho; single_positive: one positive kept '
        'per image, the rest unknown (default: mislabel)')
    group.add_argument(
        '--rho', type=float, default=0.4,
        help='noise rate in [0, 1) (default 0.4; unused by single_positive)')
    group.add_argument(
        '--empty-images', choices=EMPTY_IMAGE_MODES, default='drop',
        help='single_positive: drop or keep (all unknown) the images '
        'without a positive label (default: drop)')
    add_output_args(parser)
    args = parser.parse_args(argv)
    try:
        check_noise_args(args.noise_type, args.rho, args.empty_images)
    except ValueError as err:
        parser.error(f'--rho: {err}')
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = dict(
        type='NoisyLabelDataset',
        dataset=source_dataset_cfg(args),
        noise_type=args.noise_type,
        rho=args.rho,
        seed=args.seed,
        empty_images=args.empty_images)
    report = run_builder(cfg, args.out, args.report)
    noise = report[args.noise_type]
    if args.noise_type == 'mislabel':
        print(f'mislabel: requested rate {args.rho}, realised '
              f'{noise["realised_rate"]:.4f} ({noise["num_moved"]} of '
              f'{noise["num_positives"]} positives moved); '
              f'{noise.get("num_cells_below_eq11", 0)} Eq. (11) cells out '
              'of reach')
    elif args.noise_type == 'flip':
        print(f'flip: requested rate {args.rho}, realised positives '
              f'{noise["realised_positive_rate"]}, negatives '
              f'{noise["realised_negative_rate"]}')
    else:
        print(f'single positive: {noise["num_positives_kept"]} of '
              f'{noise["num_positives"]} positives kept, '
              f'{noise["num_images_without_positive"]} images without a '
              f'positive ({args.empty_images})')
    return report


if __name__ == '__main__':
    main()
