"""LongTailSubsetDataset (COCO-MLT / VOC-MLT style Pareto subsets, DB loss
appendix A.1), its configs and its command-line builder."""
import json
import os.path as osp
import re

import numpy as np
import pytest
from fake_datasets import FakeTriStateDataset
from mmengine.config import Config
from mmpretrain.registry import DATASETS

import mlimb_mm  # noqa: F401  (fills the registries)
from mlimb_mm.datasets import TriStateMultiLabelDataset
from mlimb_mm.datasets.wrappers import LongTailSubsetDataset
from mlimb_mm.datasets.wrappers.long_tail_subset import (
    pareto_reference_sizes, resample_probability)
from script_loader import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def single_label_source(sizes):
    """One positive per image, class k in ``sizes[k]`` images (shuffled)."""
    rows = np.repeat(np.arange(len(sizes)), sizes)
    rows = np.random.default_rng(0).permutation(rows)
    labels = np.zeros((len(rows), len(sizes)), np.int8)
    labels[np.arange(len(rows)), rows] = 1
    return labels


def cooccurring_source(num_images=4000, num_classes=10, extra=0.06, seed=3):
    """Each image has a primary class and each other class with
    probability ``extra``; a few unknown labels."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((num_images, num_classes)) < extra).astype(np.int8)
    labels[np.arange(num_images), rng.integers(0, num_classes,
                                               num_images)] = 1
    unknown = (rng.random(labels.shape) < 0.02) & (labels == 0)
    labels[unknown] = -1
    return labels


def by_rank(report, key):
    return [row[key] for row in report['per_class']]


# -- the reference curve ------------------------------------------------------
def test_curve_is_the_papers_pareto_curve():
    from scipy.stats import pareto

    # the authors' released pareto_dist(b, K, max, min=1, tail=0.99)
    for num_classes, max_size, alpha in [(80, 1200, 6), (20, 800, 6),
                                         (10, 500, 6), (15, 300, 3)]:
        x = np.linspace(pareto.ppf(0., alpha), pareto.ppf(0.99, alpha),
                        num_classes)
        released = (pareto.pdf(x, alpha) * (max_size - 1) / alpha +
                    1).astype(int)
        ours = pareto_reference_sizes(num_classes, max_size, alpha)
        assert np.abs(ours - released).max() <= 0, (num_classes, ours,
                                                    released)
    # the minima the paper reports: COCO-MLT 1200 -> 6, VOC-MLT 800 -> 4
    coco = pareto_reference_sizes(80, 1200, 6)
    voc = pareto_reference_sizes(20, 800, 6)
    assert (coco[0], coco[-1], voc[0], voc[-1]) == (1200, 6, 800, 4)
    assert (np.diff(coco) <= 0).all() and (np.diff(voc) <= 0).all()


def test_curve_with_min_size_has_exact_ends():
    sizes = pareto_reference_sizes(12, 400, 6, min_size=9)
    assert sizes[0] == 400 and sizes[-1] == 9
    assert (np.diff(sizes) <= 0).all()
    # the same shape as the paper's curve, rescaled onto [9, 400]
    x = 1 + np.arange(12) / 11 * (100**(1 / 6) - 1)
    g = x**-7.
    expected = np.floor(9 + 391 * (g - g[-1]) / (1 - g[-1]) + 1e-9)
    np.testing.assert_array_equal(sizes, expected)


def test_resample_probability_is_eq1():
    labels = cooccurring_source(500, 5)
    pos = labels == 1
    expected = np.zeros(5)
    for i in range(5):
        for j in range(5):
            expected[i] += (pos[:, i] & pos[:, j]).sum() / pos[:, j].sum()
    np.testing.assert_allclose(resample_probability(pos), expected / 5)


# -- the subset ---------------------------------------------------------------
def test_without_cooccurrence_every_class_meets_its_target():
    sizes = np.array([300, 120, 260, 90, 200, 150, 60, 40])
    source = FakeTriStateDataset(single_label_source(sizes))
    subset = LongTailSubsetDataset(source, alpha=6, max_size=250,
                                   min_size=3, rank_by='size')
    report = subset.report()
    targets = pareto_reference_sizes(8, 250, 6, min_size=3)
    order = np.argsort(-sizes, kind='stable')
    assert report['class_order'] == [f'c{k}' for k in order]
    assert by_rank(report, 'target') == targets.tolist()
    assert by_rank(report, 'realised') == targets.tolist()
    assert report['class_counts'] == report['target_class_counts']
    assert len(subset) == targets.sum()
    assert report['max_abs_deviation'] == 0
    assert report['imbalance_ratio'] == pytest.approx(250 / 3)


def test_cooccurring_source_follows_the_curve_tail_exact():
    labels = cooccurring_source(num_classes=20, extra=0.02)
    subset = LongTailSubsetDataset(FakeTriStateDataset(labels), alpha=6,
                                   max_size=250, seed=1)
    report = subset.report()
    pos = labels == 1
    # ranked by DB Eq. (1), head first
    expected_order = np.argsort(-resample_probability(pos), kind='stable')
    assert report['class_order'] == [f'c{k}' for k in expected_order]
    target = np.asarray(by_rank(report, 'target'))
    realised = np.asarray(by_rank(report, 'realised'))
    np.testing.assert_array_equal(target, pareto_reference_sizes(20, 250))
    # realised counts are the subset's own positives
    kept = subset.source_indices
    np.testing.assert_array_equal(
        pos[kept].sum(0)[expected_order], realised)
    # labels unchanged, indices in source order, no duplicates
    np.testing.assert_array_equal(subset.get_tristate_labels(),
                                  labels[kept])
    assert (np.diff(kept) > 0).all()
    # the documented tolerance: the last class exact, rank r within the
    # sum of the later steps' changes
    assert realised[-1] == target[-1]
    steps = np.abs(np.asarray(report['step_changes']))
    later = np.concatenate([np.cumsum(steps[::-1])[::-1][1:], [0]])
    assert (np.abs(realised - target) <= later).all()
    assert (np.abs(realised - target) < later[0]).any()  # the bound bites
    # a long tail: the last quarter of the ranks within one image of the
    # target, the head pulled down by the tail's eliminations (the paper's
    # COCO-MLT: 1128 of 1200) but by less than a third
    assert np.abs(realised - target)[-5:].max() <= 1
    assert 2 / 3 * target[0] < realised[0] <= target[0]
    assert report['imbalance_ratio'] > 50
    assert report['max_abs_deviation'] == np.abs(realised - target).max()
    json.dumps(report)
    # more sweeps (ours, not the paper's) bring the head nearer its target
    swept = LongTailSubsetDataset(FakeTriStateDataset(labels), alpha=6,
                                  max_size=250, seed=1, num_passes=4)
    swept_realised = np.asarray(by_rank(swept.report(), 'realised'))
    assert swept_realised[-1] == target[-1]
    assert np.abs(swept_realised - target).mean() < 0.5 * np.abs(
        realised - target).mean()


def test_groups_use_the_thresholds():
    sizes = np.array([400, 300, 200, 150, 100, 60, 30])
    source = FakeTriStateDataset(single_label_source(sizes))
    subset = LongTailSubsetDataset(source, alpha=4, max_size=300,
                                   min_size=5, rank_by='size')
    counts = np.asarray(subset.report()['class_counts'])
    for thresholds in [(20, 100), (10, 50)]:
        report = LongTailSubsetDataset(
            source, alpha=4, max_size=300, min_size=5, rank_by='size',
            group_thresholds=thresholds).report()
        low, high = thresholds
        assert report['groups']['many'] == [
            f'c{k}' for k in np.flatnonzero(counts > high)]
        assert report['groups']['medium'] == [
            f'c{k}' for k in np.flatnonzero((counts >= low)
                                            & (counts <= high))]
        assert report['groups']['few'] == [
            f'c{k}' for k in np.flatnonzero(counts < low)]
        assert sum(report['group_sizes'].values()) == 7


def test_determinism_and_seeds():
    source = FakeTriStateDataset(cooccurring_source(2000, 8))
    kwargs = dict(alpha=6, max_size=150)
    a = LongTailSubsetDataset(source, seed=5, **kwargs)
    b = LongTailSubsetDataset(source, seed=5, **kwargs)
    c = LongTailSubsetDataset(source, seed=6, **kwargs)
    np.testing.assert_array_equal(a.source_indices, b.source_indices)
    assert a.report() == b.report()
    assert not np.array_equal(a.source_indices, c.source_indices)
    # the tail class is exact whatever the seed
    assert by_rank(a.report(), 'realised')[-1] == by_rank(
        c.report(), 'realised')[-1] == by_rank(a.report(), 'target')[-1]


def test_class_order_and_derived_max_size():
    sizes = np.array([50, 400, 90, 300])
    source = FakeTriStateDataset(single_label_source(sizes))
    subset = LongTailSubsetDataset(source, alpha=6, max_size=40,
                                   class_order=['c2', 0, 'c3', 'c1'])
    report = subset.report()
    assert report['rank_by'] == 'class_order'
    assert report['class_order'] == ['c2', 'c0', 'c3', 'c1']
    assert report['target_class_counts'][2] == 40
    # max_size=None: the largest head whose targets all fit
    derived = LongTailSubsetDataset(source, alpha=2, min_size=4,
                                    rank_by='size')
    m = derived.report()['max_size']
    assert derived.report()['max_size_derived']
    ranked = np.sort(sizes)[::-1]
    assert (pareto_reference_sizes(4, m, 2, 4) <= ranked).all()
    assert not (pareto_reference_sizes(4, m + 1, 2, 4) <= ranked).all()
    with pytest.raises(ValueError, match='the Pareto target asks'):
        LongTailSubsetDataset(source, alpha=2, min_size=4, max_size=m + 1,
                              rank_by='size')


# -- errors -------------------------------------------------------------------
def test_target_larger_than_the_class():
    sizes = np.array([100, 80, 12, 60])
    source = FakeTriStateDataset(single_label_source(sizes))
    # rank by size: c0, c1, c3, c2; targets 100 ... 30
    with pytest.raises(ValueError,
                       match=re.escape("class 'c2' has 12 images, the "
                                       'Pareto target asks 30')):
        LongTailSubsetDataset(source, alpha=1, max_size=100, min_size=30,
                              rank_by='size')


def test_other_errors():
    labels = cooccurring_source(300, 4)
    source = FakeTriStateDataset(labels)
    for alpha in (0, -1.5):
        with pytest.raises(ValueError, match='alpha must be > 0'):
            LongTailSubsetDataset(source, alpha=alpha, max_size=10)
    with pytest.raises(ValueError, match='min_size'):
        LongTailSubsetDataset(source, max_size=10, min_size=20)
    with pytest.raises(ValueError, match="class_order names 'zebra'"):
        LongTailSubsetDataset(source, max_size=10,
                              class_order=['c0', 'c1', 'c2', 'zebra'])
    with pytest.raises(ValueError, match='each of the 4 classes once'):
        LongTailSubsetDataset(source, max_size=10,
                              class_order=['c0', 'c1', 'c1', 'c3'])
    empty = labels.copy()
    empty[:, 2] = np.where(empty[:, 2] == 1, 0, empty[:, 2])
    with pytest.raises(ValueError,
                       match="class 'c2' has no positive image"):
        LongTailSubsetDataset(FakeTriStateDataset(empty), max_size=10)
    with pytest.raises(ValueError, match='not both'):
        LongTailSubsetDataset(source, image_ids=[1000], indices_file='x')


# -- given image lists --------------------------------------------------------
def test_image_ids_matched_by_img_id(tmp_path):
    labels = cooccurring_source(50, 4)
    source = FakeTriStateDataset(labels)
    wanted = [1040, 1003, 1017, 1000]  # img_id = 1000 + index
    subset = LongTailSubsetDataset(source, image_ids=wanted)
    np.testing.assert_array_equal(subset.source_indices, [0, 3, 17, 40])
    np.testing.assert_array_equal(subset.get_tristate_labels(),
                                  labels[[0, 3, 17, 40]])
    report = subset.report()
    assert report['mode'] == 'list' and report['matched_by'] == 'img_id'
    assert report['class_counts'] == (labels[[0, 3, 17, 40]] == 1).sum(
        0).tolist()
    assert report['target_class_counts'] is None
    # a text file of ids (the authors' img_id.pkl is one), and a JSON list
    txt = tmp_path / 'img_id.pkl'
    txt.write_text('# COCO-MLT\n1040\n\n1003\n1017\n1000\n')
    js = tmp_path / 'ids.json'
    js.write_text(json.dumps(wanted))
    for path in (txt, js):
        for kwargs in (dict(indices_file=str(path)),
                       dict(image_ids=str(path))):
            np.testing.assert_array_equal(
                LongTailSubsetDataset(source, **kwargs).source_indices,
                [0, 3, 17, 40])
    broken = tmp_path / 'broken.json'
    broken.write_text('[1040, 1003,')
    with pytest.raises(ValueError, match=r"image list '.*broken\.json' is "
                       'not valid JSON'):
        LongTailSubsetDataset(source, indices_file=str(broken))
    with pytest.raises(ValueError, match="image '1999' of image_ids is not "
                       'in the source'):
        LongTailSubsetDataset(source, image_ids=[1003, 1999])
    with pytest.raises(ValueError, match="image '1003' is listed more"):
        LongTailSubsetDataset(source, image_ids=[1003, 1017, '1003'])


def test_image_ids_matched_by_basename_or_index():
    labels = cooccurring_source(30, 3)
    by_path = FakeTriStateDataset(labels, fields=('img_path', ))
    subset = LongTailSubsetDataset(
        by_path, image_ids=['00007', 'some/dir/00002.jpg', '00011.png'])
    np.testing.assert_array_equal(subset.source_indices, [2, 7, 11])
    assert subset.report()['matched_by'] == 'basename'
    with pytest.raises(ValueError, match="image '2008_000023'"):
        LongTailSubsetDataset(by_path, image_ids=['00001', '2008_000023'])
    by_index = FakeTriStateDataset(labels, fields=())
    subset = LongTailSubsetDataset(by_index, image_ids=[5, '1', 29])
    np.testing.assert_array_equal(subset.source_indices, [1, 5, 29])
    assert subset.report()['matched_by'] == 'index'
    with pytest.raises(ValueError, match='index 30'):
        LongTailSubsetDataset(by_index, image_ids=[5, 30])
    # id_key forces a field
    subset = LongTailSubsetDataset(FakeTriStateDataset(labels), id_key='index',
                                   image_ids=[4])
    np.testing.assert_array_equal(subset.source_indices, [4])


def test_voc_source_without_tristate_labels(tmp_path):
    """mmpretrain's VOC: difficult-only classes become unknown, ids are the
    file names (the authors' VOC-MLT list holds such ids)."""
    root = tmp_path / 'VOC2012'
    for sub in ('Annotations', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True)
    objects = {'000001': [('dog', 0), ('person', 1)],
               '000002': [('cat', 0), ('chair', 0), ('cat', 1)],
               '000004': [('dog', 0)]}
    for img_id, objs in objects.items():
        body = ''.join(
            f'<object><name>{name}</name><difficult>{difficult}</difficult>'
            '<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>'
            '</bndbox></object>' for name, difficult in objs)
        (root / 'Annotations' / f'{img_id}.xml').write_text(
            f'<annotation>{body}</annotation>')
    (root / 'ImageSets/Main/trainval.txt').write_text('\n'.join(objects))
    CAT, CHAIR, DOG, PERSON = 7, 8, 11, 14  # VOC class indices
    subset = DATASETS.build(
        dict(type='LongTailSubsetDataset',
             dataset=dict(type='VOC', data_root=str(root), split='trainval',
                          pipeline=[dict(type='PackMultiLabelInputs')]),
             image_ids=['000001', '000002']))
    labels = subset.get_tristate_labels()
    expected = np.zeros((2, 20), np.int8)
    expected[0, [DOG, PERSON]] = [1, -1]
    expected[1, [CAT, CHAIR]] = 1
    np.testing.assert_array_equal(labels, expected)
    packed = subset[0]['data_samples']
    np.testing.assert_array_equal(packed.gt_tristate.numpy(), expected[0])


# -- configs ------------------------------------------------------------------
@pytest.mark.parametrize('name', ['coco_mlt', 'voc_mlt', 'digits_mlt'])
def test_configs_parse(name):
    cfg = Config.fromfile(
        osp.join(REPO, f'configs/_base_/datasets/{name}.py'))
    train = cfg.train_dataloader.dataset
    assert train.type == 'LongTailSubsetDataset'
    assert train.alpha == 6 and '_delete_' not in cfg.pretty_text
    assert 'pipeline' in train.dataset
    evaluators = cfg.val_evaluator
    evaluators = evaluators if isinstance(evaluators, list) else [evaluators]
    for evaluator in evaluators:
        counts_from = evaluator.train_dataset
        assert counts_from.type == 'LongTailSubsetDataset'
        # the metric's groups come from the very same subset
        for key in ('alpha', 'max_size', 'seed', 'rank_by'):
            assert counts_from[key] == train[key]
        assert {k: v for k, v in train.dataset.items()
                if k != 'pipeline'} == dict(counts_from.dataset)
    expected = dict(
        coco_mlt=('CocoMultiLabelDataset', 1200,
                  'annotations/instances_val2017.json'),
        voc_mlt=('VOC', 800, 'test'),
        digits_mlt=('LongTailMultiDigits', 800, 'test'))[name]
    assert (train.dataset.type, train.max_size) == expected[:2]
    test = cfg.test_dataloader.dataset
    assert expected[2] in (test.get('ann_file'), test.get('split'))
    if name == 'voc_mlt':
        assert train.dataset.data_root.endswith('VOC2012')
        assert test.data_root.endswith('VOC2007')


def test_digits_config_builds():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/datasets/digits_mlt.py'))
    subset = DATASETS.build(cfg.train_dataloader.dataset)
    report = subset.report()
    # the numbers the config's comment states
    assert report['num_source_samples'] == 6714
    assert len(subset) == 721
    assert by_rank(report, 'target')[0] == 800
    assert by_rank(report, 'realised')[0] == 487
    assert by_rank(report, 'realised')[-1] == by_rank(report,
                                                      'target')[-1] == 4
    assert report['group_sizes'] == dict(many=3, medium=3, few=4)
    packed = subset[0]
    assert packed['inputs'].shape == (3, 40, 40)
    np.testing.assert_array_equal(packed['data_samples'].gt_tristate.numpy(),
                                  subset.get_tristate_labels()[0])
    # the metric's training set is the same subset
    counts_from = DATASETS.build(cfg.val_evaluator[0].train_dataset)
    np.testing.assert_array_equal(counts_from.get_class_counts(),
                                  subset.get_class_counts())


# -- command line -------------------------------------------------------------
def load_cli():
    return load_script('tools/dataset_converters/make_long_tail_subset.py')


def write_coco(root, num_images=60, seed=0):
    """A plain-json COCO instances file over 5 categories (sparse ids) with
    a long-tailed, co-occurring label distribution; no image files."""
    rng = np.random.default_rng(seed)
    cat_ids = [1, 3, 7, 18, 44]
    categories = [dict(id=c, name=name) for c, name in zip(
        cat_ids, ['person', 'car', 'truck', 'dog', 'bottle'])]
    images = [dict(id=100 + 3 * i, file_name=f'{i:012d}.jpg', height=8,
                   width=8) for i in range(num_images)]
    probs = np.array([0.7, 0.5, 0.35, 0.3, 0.25])
    labels = rng.random((num_images, 5)) < probs
    rows, cols = np.nonzero(labels)
    annotations = [
        dict(id=k + 1, image_id=100 + 3 * int(r),
             category_id=cat_ids[int(c)], iscrowd=0)
        for k, (r, c) in enumerate(zip(rows, cols))
    ]
    ann_file = root / 'instances_mini.json'
    ann_file.write_text(json.dumps(dict(
        images=images, annotations=annotations, categories=categories)))
    return ann_file, labels


def test_cli_end_to_end(tmp_path, capsys):
    ann_file, labels = write_coco(tmp_path)
    out = tmp_path / 'out' / 'coco_mlt.json'
    cli = load_cli()
    report = cli.main([
        '--source', 'coco', '--ann-file', str(ann_file), '--data-root',
        str(tmp_path), '--img-prefix', 'imgs', '--alpha', '3',
        '--max-size', '20', '--min-size', '2', '--seed', '3', '--out',
        str(out)
    ])
    assert 'LongTailSubsetDataset' in capsys.readouterr().out
    report_file = tmp_path / 'out' / 'coco_mlt.report.json'
    saved = json.loads(report_file.read_text())
    assert saved['per_class'] == report['per_class']
    assert saved['source']['type'] == 'CocoMultiLabelDataset'
    assert by_rank(saved, 'target') == pareto_reference_sizes(
        5, 20, 3, 2).tolist()
    assert by_rank(saved, 'realised')[-1] == 2

    written = TriStateMultiLabelDataset(ann_file=str(out))
    assert written.CLASSES == ('person', 'car', 'truck', 'dog', 'bottle')
    assert len(written) == saved['num_samples'] < 60
    got = written.get_tristate_labels()
    np.testing.assert_array_equal(written.get_class_counts(),
                                  saved['class_counts'])
    realised = dict(zip(by_rank(saved, 'name'), by_rank(saved, 'realised')))
    assert [realised[c] for c in written.CLASSES] == saved['class_counts']
    # each written row is the source row of its image
    index = [int(osp.basename(written.get_data_info(i)['img_path'])[:-4])
             for i in range(len(written))]
    np.testing.assert_array_equal(got, labels[index].astype(np.int8))
    assert written.get_data_info(0)['img_path'].startswith(
        osp.join(str(tmp_path), 'imgs'))

    # the same subset back from a list of its COCO image ids
    ids = tmp_path / 'img_id.txt'
    ids.write_text('\n'.join(str(100 + 3 * i) for i in index) + '\n')
    out2 = tmp_path / 'again.json'
    again = cli.main([
        '--source', 'coco', '--ann-file', str(ann_file), '--image-ids',
        str(ids), '--out', str(out2), '--report',
        str(tmp_path / 'r2.json')
    ])
    assert again['mode'] == 'list' and again['matched_by'] == 'img_id'
    assert again['class_counts'] == saved['class_counts']
    assert json.loads((tmp_path / 'r2.json').read_text())['num_samples'] \
        == len(index)
