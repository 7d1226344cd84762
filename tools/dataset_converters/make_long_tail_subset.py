"""Build a long-tailed subset of a multi-label dataset (COCO-MLT / VOC-MLT
style, Wu et al. 2020, DB loss appendix A.1) and write it as an annotation
file that ``TriStateMultiLabelDataset`` reads, with a JSON report.

    # COCO-MLT as in the paper (alpha=6, head 1200, tail derived: 6)
    python tools/dataset_converters/make_long_tail_subset.py \\
        --source coco --data-root data/coco \\
        --ann-file annotations/instances_train2017.json \\
        --img-prefix train2017 --alpha 6 --max-size 1200 \\
        --out data/coco/annotations/coco_mlt_train.json

    # VOC-MLT from VOC 2012 trainval (head 800, tail derived: 4)
    python tools/dataset_converters/make_long_tail_subset.py \\
        --source voc --data-root data/VOCdevkit/VOC2012 --split trainval \\
        --alpha 6 --max-size 800 --out data/voc_mlt_train.json

    # the authors' published image list instead of a new draw
    python tools/dataset_converters/make_long_tail_subset.py \\
        --source coco ... --image-ids appendix/coco/longtail2017/img_id.pkl \\
        --out data/coco/annotations/coco_mlt_train.json

The report (default: OUT with ``.report.json``) holds the target and
realised size of every class (``per_class``), the many / medium / few
groups and the imbalance ratio. See ``LongTailSubsetDataset`` for the
curve and the selection algorithm.
"""
import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)

from mlimb_mm.datasets.wrappers.cli import (add_output_args,  # noqa: E402
                                            add_source_args, run_builder,
                                            source_dataset_cfg)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Long-tailed (Pareto) subset of a multi-label dataset, '
        'built head-to-tail as COCO-MLT / VOC-MLT.')
    add_source_args(parser)
    group = parser.add_argument_group('long-tailed subset')
    group.add_argument(
        '--alpha', type=float, default=6., help='Pareto power (default 6)')
    group.add_argument(
        '--max-size', type=int,
        help='images of the head class (default: the largest the source '
        'allows)')
    group.add_argument(
        '--min-size', type=int,
        help='images of the tail class (default: derived from the paper\'s '
        'curve, e.g. 6 for --max-size 1200)')
    group.add_argument(
        '--cdf-cut', type=float, default=0.99,
        help='where the Pareto pdf is cut (default 0.99)')
    group.add_argument(
        '--rank-by', choices=('resample_prob', 'size'),
        default='resample_prob',
        help='class order, head first: DB Eq. (1) (the paper) or source '
        'class size')
    group.add_argument(
        '--image-ids', metavar='FILE',
        help='keep the images of this list (JSON list, or one id / path / '
        'index per line) instead of drawing a new subset')
    group.add_argument(
        '--id-key', choices=('auto', 'img_id', 'basename', 'index'),
        default='auto', help='how --image-ids entries are matched')
    group.add_argument(
        '--group-thresholds', type=int, nargs=2, default=(20, 100),
        metavar=('LOW', 'HIGH'),
        help='report groups: many > HIGH >= medium >= LOW > few')
    add_output_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = dict(
        type='LongTailSubsetDataset',
        dataset=source_dataset_cfg(args),
        alpha=args.alpha,
        max_size=args.max_size,
        min_size=args.min_size,
        cdf_cut=args.cdf_cut,
        rank_by=args.rank_by,
        indices_file=args.image_ids,
        id_key=args.id_key,
        group_thresholds=tuple(args.group_thresholds),
        seed=args.seed)
    report = run_builder(cfg, args.out, args.report)
    groups = report['group_sizes']
    print(f'classes: {groups["many"]} many, {groups["medium"]} medium, '
          f'{groups["few"]} few; imbalance ratio '
          f'{report["imbalance_ratio"]}')
    return report


if __name__ == '__main__':
    main()
