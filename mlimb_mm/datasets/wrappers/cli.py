"""Shared command-line plumbing of the benchmark builders in
``tools/dataset_converters/``: pick the source annotations, build a wrapper,
write the new annotation file and its JSON report."""
import argparse
import json
import os
import os.path as osp
import time

SOURCES = ('coco', 'voc', 'tristate', 'digits')


def add_source_args(parser: argparse.ArgumentParser):
    """Arguments that name the raw annotations a builder starts from."""
    group = parser.add_argument_group('source annotations')
    group.add_argument(
        '--source', choices=SOURCES, required=True,
        help='coco: instances_*.json; voc: a VOC2007-style tree; tristate: '
        'a TriStateMultiLabelDataset file (csv / json / Open Images csv); '
        'digits: the embedded LongTailMultiDigits (config use only, no '
        'image files to point to)')
    group.add_argument('--ann-file', help='annotation file (coco, tristate)')
    group.add_argument('--data-root', default='', help='dataset root')
    group.add_argument(
        '--img-prefix', default='',
        help='image folder, relative to --data-root')
    group.add_argument(
        '--split', default='trainval', help='VOC split (voc only)')
    group.add_argument(
        '--classes', help='class list file (tristate, Open Images style)')
    return parser


def add_output_args(parser: argparse.ArgumentParser):
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--out', required=True, help='the new annotation file (.json)')
    parser.add_argument(
        '--report', help='JSON report (default: OUT with .report.json)')
    return parser


def source_dataset_cfg(args) -> dict:
    """The dataset config that ``--source`` and its options describe."""
    needs_ann = args.source in ('coco', 'tristate')
    if needs_ann and not args.ann_file:
        raise SystemExit(f'--source {args.source} needs --ann-file')
    if args.source == 'coco':
        return dict(type='CocoMultiLabelDataset', data_root=args.data_root,
                    ann_file=args.ann_file,
                    data_prefix=dict(img_path=args.img_prefix))
    if args.source == 'voc':
        return dict(type='VOC', data_root=args.data_root, split=args.split)
    if args.source == 'tristate':
        cfg = dict(type='TriStateMultiLabelDataset',
                   data_root=args.data_root, ann_file=args.ann_file,
                   data_prefix=dict(img_path=args.img_prefix))
        if args.classes:
            cfg['metainfo'] = dict(classes=args.classes)
        return cfg
    return dict(type='LongTailMultiDigits', split='train')


def run_builder(wrapper_cfg: dict, out_file: str, report_file: str = None):
    """Build ``wrapper_cfg``, dump its annotation file and report, print a
    summary; returns the report."""
    import mlimb_mm  # noqa: F401  (registers the datasets)
    from mmpretrain.registry import DATASETS
    start = time.time()
    wrapper = DATASETS.build(wrapper_cfg)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    wrapper.dump_annotation(out_file)
    report = wrapper.report()
    report['source'] = wrapper_cfg['dataset']
    report['annotation_file'] = out_file
    report['seconds'] = round(time.time() - start, 2)
    report_file = report_file or osp.splitext(out_file)[0] + '.report.json'
    with open(report_file, 'w') as f:
        json.dump(report, f, indent=2, default=str)
    print(f'\n{report["builder"]}: {report["num_samples"]} of '
          f'{report["num_source_samples"]} samples -> {out_file}\n'
          f'report -> {report_file}')
    return report
