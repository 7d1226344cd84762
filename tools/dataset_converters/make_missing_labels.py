"""Build a partial-label benchmark: hide a part of a dataset's labels
(:class:`mlimb_mm.datasets.wrappers.MissingLabelDataset`) and write the result
as a ``TriStateMultiLabelDataset`` JSON annotation file plus a JSON report
(requested and realised kept fractions, per class).

Modes (definitions and the papers' text in ``MissingLabelDataset``):

- ``pal``: keep ``--keep-ratio`` of all known labels, positives and
  negatives alike (Zhang et al., PAL_0.3 / 0.6 / 0.9);
- ``ppl``: keep ``--keep-ratio`` of the positives (at least one per image),
  drop every negative;
- ``spl``: keep one positive per image, drop everything else;
- ``missing_positives``: make ``--missing-rate`` of the positives unknown,
  keep the negatives (COMIC's PLT benchmarks, missing rate 0.4).

Examples::

    # COCO 2017 train, PAL with 60% of the labels kept
    python tools/dataset_converters/make_missing_labels.py \\
        --source coco --data-root data/coco \\
        --ann-file annotations/instances_train2017.json \\
        --img-prefix train2017 \\
        --mode pal --keep-ratio 0.6 --seed 0 \\
        --out data/coco/annotations/train2017_pal0.6.json

    # VOC 2007 trainval, single positive label
    python tools/dataset_converters/make_missing_labels.py \\
        --source voc --data-root data/VOCdevkit/VOC2007 \\
        --mode spl --out data/VOCdevkit/VOC2007/trainval_spl.json

Compositions: the output of one builder is the input of the next through
``--source tristate --ann-file <previous output>``. The PLT-COCO benchmark of
COMIC (a long-tailed subset with 40% of the positives missing) is two steps:

    # 1. the long-tailed subset (LongTailSubsetDataset)
    python tools/dataset_converters/make_long_tail_subset.py \\
        --source coco --data-root data/coco \\
        --ann-file annotations/instances_train2017.json \\
        --img-prefix train2017 ... \\
        --out data/coco/annotations/train2017_lt.json
    # 2. 40% of its positives missing
    python tools/dataset_converters/make_missing_labels.py \\
        --source tristate --ann-file data/coco/annotations/train2017_lt.json \\
        --mode missing_positives --missing-rate 0.4 --seed 0 \\
        --out data/coco/annotations/train2017_plt.json

(PLT-VOC likewise from ``--source voc``.) The written ``img_path`` values are
the paths step 1 resolved (data root and image prefix joined), so step 2
needs no ``--data-root``.
``TriStateMultiLabelDataset`` reads a file's ``gt_tristate`` only, so the
clean labels step 2 writes are step 1's output labels (the same as the
original labels for a long-tailed subset, which changes no label). In a
config the same composition is a nested wrapper, whose clean labels go back
to the original dataset (``configs/_base_/datasets/plt_coco.py``).
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

try:
    from mlimb_mm.datasets.wrappers.cli import (add_output_args,
                                                add_source_args, run_builder,
                                                source_dataset_cfg)
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..',
                                '..'))
    from mlimb_mm.datasets.wrappers.cli import (add_output_args,
                                                add_source_args, run_builder,
                                                source_dataset_cfg)

MODES = ('pal', 'ppl', 'spl', 'missing_positives')


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = argparse.ArgumentParser(
        description='Hide labels of a multi-label dataset (PAL / PPL / SPL '
        'partial labels, COMIC missing positives).',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('Examples::')[1])
    add_source_args(parser)
    group = parser.add_argument_group('missing labels')
    group.add_argument('--mode', choices=MODES, required=True)
    group.add_argument(
        '--keep-ratio', type=float,
        help='pal / ppl: fraction of the eligible labels kept, in (0, 1]')
    group.add_argument(
        '--missing-rate', type=float,
        help='missing_positives: fraction of the positives made unknown, '
        'in [0, 1) (COMIC: 0.4)')
    group.add_argument(
        '--sampling', choices=('exact', 'bernoulli'), default='exact',
        help='exact: that fraction of the dataset\'s eligible labels, '
        'exactly; bernoulli: each label kept independently')
    group.add_argument(
        '--min-positives', type=int,
        help='positives kept at least per image (default: 1 for ppl/spl, '
        '0 for pal/missing_positives)')
    group.add_argument(
        '--missing-as', choices=('unknown', 'negative'), default='unknown',
        help='missing_positives: write a missing positive as -1 (default) '
        'or as 0 (the COMIC paper\'s binary labels)')
    add_output_args(parser)
    return parser.parse_args(argv)


def wrapper_cfg(args) -> dict:
    cfg = dict(
        type='MissingLabelDataset',
        dataset=source_dataset_cfg(args),
        mode=args.mode,
        sampling=args.sampling,
        seed=args.seed)
    if args.keep_ratio is not None:
        cfg['keep_ratio'] = args.keep_ratio
    if args.missing_rate is not None:
        cfg['missing_rate'] = args.missing_rate
    if args.min_positives is not None:
        cfg['min_positives'] = args.min_positives
    if args.missing_as != 'unknown':
        cfg['missing_as'] = args.missing_as
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    try:
        cfg = wrapper_cfg(args)
        return run_builder(cfg, args.out, args.report)
    except ValueError as error:
        if 'MissingLabelDataset' in str(error):
            raise SystemExit(f'error: {error}')
        raise


if __name__ == '__main__':
    main()
