"""MissingLabelDataset (PAL / PPL / SPL / COMIC missing positives) and its
command-line builder."""
import inspect
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmpretrain.registry import DATASETS

import mlimb_mm  # noqa: F401  (fills the registries)
from mlimb_mm.datasets import (BaseMultiLabelDataset, LongTailMultiDigits,
                               TriStateMultiLabelDataset)
from mlimb_mm.datasets.wrappers import MissingLabelDataset
from mlimb_mm.datasets.wrappers.missing_labels import pick_per_row
from script_loader import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
N, K = 20000, 12
SE_BOUND = 4  # realised fractions within 4 standard errors


class ArrayDataset(BaseMultiLabelDataset):
    """An in-memory multi-label dataset holding a given tri-state matrix."""

    METAINFO = {'classes': tuple(f'c{k}' for k in range(K))}

    def __init__(self, labels, **kwargs):
        self._labels = np.asarray(labels, np.int8)
        super().__init__(ann_file='', serialize_data=False, **kwargs)

    def load_data_list(self):
        return [
            dict(img_path=f'{i}.jpg', gt_tristate=row,
                 gt_label=np.flatnonzero(row == 1).tolist())
            for i, row in enumerate(self._labels)
        ]


def synthetic_labels(seed=12345):
    """Class prevalence 0.02 ... 0.40, 10% of the labels unknown. The seed
    differs from the wrappers' seeds, so their draws are independent of the
    ones that made the labels."""
    rng = np.random.default_rng(seed)
    prevalence = np.linspace(0.02, 0.4, K)
    labels = (rng.random((N, K)) < prevalence).astype(np.int8)
    labels[rng.random((N, K)) < 0.1] = -1
    return labels


@pytest.fixture(scope='module')
def source():
    return ArrayDataset(synthetic_labels())


def within_se(realised, requested, n):
    """``|realised - requested|`` within SE_BOUND binomial standard errors
    (elementwise; entries with ``n == 0`` pass)."""
    realised, n = np.asarray(realised, float), np.asarray(n)
    se = np.sqrt(requested * (1 - requested) / np.maximum(n, 1))
    return np.all((n == 0) | (np.abs(realised - requested)
                              <= SE_BOUND * se + 1e-12))


def kept_fractions(src, new):
    """Per class: kept positives / known positives, kept negatives / known
    negatives, and the two denominators."""
    pos, neg = src == 1, src == 0
    n_pos, n_neg = pos.sum(0), neg.sum(0)
    return ((pos & (new == 1)).sum(0) / np.maximum(n_pos, 1),
            (neg & (new == 0)).sum(0) / np.maximum(n_neg, 1), n_pos, n_neg)


def build(source, **kwargs):
    return MissingLabelDataset(source, **kwargs)


# -- PAL ------------------------------------------------------------------
@pytest.mark.parametrize('sampling', ['exact', 'bernoulli'])
@pytest.mark.parametrize('keep_ratio', [0.3, 0.6, 0.9])
def test_pal_keeps_a_fraction_of_all_labels(source, sampling, keep_ratio):
    src = source.get_tristate_labels()
    wrapper = build(source, mode='pal', keep_ratio=keep_ratio,
                    sampling=sampling, seed=1)
    new = wrapper.get_tristate_labels()
    # a kept label keeps its value; a dropped one becomes unknown
    assert np.all((new == src) | (new == -1))
    pos_frac, neg_frac, n_pos, n_neg = kept_fractions(src, new)
    assert within_se(pos_frac, keep_ratio, n_pos)
    assert within_se(neg_frac, keep_ratio, n_neg)
    known = src != -1
    kept_all = (new != -1).sum() / known.sum()
    if sampling == 'exact':
        assert (new != -1).sum() == np.floor(keep_ratio * known.sum() + 0.5)
    else:
        assert within_se(kept_all, keep_ratio, known.sum())
    report = wrapper.report()
    assert report['requested_positive_fraction'] == keep_ratio
    assert report['requested_negative_fraction'] == keep_ratio
    assert report['realised_positive_fraction'] == pytest.approx(
        ((src == 1) & (new == 1)).sum() / (src == 1).sum())
    assert report['realised_negative_fraction'] == pytest.approx(
        ((src == 0) & (new == 0)).sum() / (src == 0).sum())
    np.testing.assert_allclose(
        report['realised_positive_fraction_per_class'], pos_frac, atol=1e-6)
    np.testing.assert_allclose(
        report['realised_negative_fraction_per_class'], neg_frac, atol=1e-6)
    json.dumps(report)


def test_pal_does_not_force_a_positive_per_image(source):
    """Zhang et al.: "in PAL setting, an image may correspond to several
    negative labels but zero positive labels"."""
    src = source.get_tristate_labels()
    wrapper = build(source, mode='pal', keep_ratio=0.3, seed=2)
    new = wrapper.get_tristate_labels()
    lost = (src == 1).any(1) & ~(new == 1).any(1)
    assert lost.sum() > 0.3 * (src == 1).any(1).sum()
    assert wrapper.report()['num_images_lost_all_positives'] == lost.sum()
    # kept labels per image are not fixed: they vary from image to image
    assert np.ptp((new != -1).sum(1)) >= 3


# -- PPL ------------------------------------------------------------------
@pytest.mark.parametrize('sampling', ['exact', 'bernoulli'])
def test_ppl_keeps_a_fraction_of_positives_and_no_negative(source,
                                                           sampling):
    src = source.get_tristate_labels()
    wrapper = build(source, mode='ppl', keep_ratio=0.6, sampling=sampling,
                    seed=3)
    new = wrapper.get_tristate_labels()
    assert not (new == 0).any()
    assert np.all((new == -1) | ((new == 1) & (src == 1)))
    # at least one positive per image that has one
    has_pos = (src == 1).any(1)
    assert (new[has_pos] == 1).any(1).all()
    assert not (new[~has_pos] == 1).any()
    num_pos = (src == 1).sum()
    realised = (new == 1).sum() / num_pos
    if sampling == 'exact':
        assert (new == 1).sum() == np.floor(0.6 * num_pos + 0.5)
    else:
        assert within_se(realised, 0.6, num_pos)
    report = wrapper.report()
    assert report['realised_positive_fraction'] == pytest.approx(realised)
    assert report['realised_negative_fraction'] == 0
    assert report['requested_negative_fraction'] == 0
    assert not report['forced_exceeds_request']


def test_ppl_without_minimum_is_unbiased_per_class(source):
    src = source.get_tristate_labels()
    new = build(source, mode='ppl', keep_ratio=0.6, min_positives=0,
                seed=4).get_tristate_labels()
    pos_frac, _, n_pos, _ = kept_fractions(src, new)
    assert within_se(pos_frac, 0.6, n_pos)
    assert not (new == 0).any()


def test_ppl_forced_positives_above_the_request_warn(source):
    src = source.get_tristate_labels()
    with pytest.warns(UserWarning, match='exceed the requested'):
        wrapper = build(source, mode='ppl', keep_ratio=0.05, seed=5)
    new = wrapper.get_tristate_labels()
    # only the forced positive of each image is left
    np.testing.assert_array_equal((new == 1).sum(1), (src == 1).any(1))
    assert wrapper.report()['forced_exceeds_request']


# -- SPL ------------------------------------------------------------------
def test_spl_keeps_exactly_one_positive(source):
    src = source.get_tristate_labels()
    wrapper = build(source, mode='spl', seed=6)
    new = wrapper.get_tristate_labels()
    has_pos = (src == 1).any(1)
    assert has_pos.sum() < N  # some images have no positive at all
    np.testing.assert_array_equal((new == 1).sum(1), has_pos)
    np.testing.assert_array_equal((new == -1).sum(1), K - has_pos)
    assert np.all(src[new == 1] == 1)
    # the kept positive is uniform among the image's positives: for images
    # with exactly two positives the first one is kept half of the time
    two = (src == 1).sum(1) == 2
    first = np.argmax(src[two] == 1, axis=1)
    kept_first = new[two][np.arange(two.sum()), first] == 1
    assert within_se(kept_first.mean(), 0.5, two.sum())
    report = wrapper.report()
    assert report['requested_positive_fraction'] is None
    assert report['num_images_without_source_positive'] == (~has_pos).sum()
    assert report['mean_kept_positives_per_image'] == pytest.approx(
        has_pos.mean())


# -- COMIC missing positives ------------------------------------------------
@pytest.mark.parametrize('sampling', ['exact', 'bernoulli'])
def test_missing_positives_keep_negatives(source, sampling):
    src = source.get_tristate_labels()
    wrapper = build(source, mode='missing_positives', missing_rate=0.4,
                    sampling=sampling, seed=7)
    new = wrapper.get_tristate_labels()
    np.testing.assert_array_equal(new == 0, src == 0)  # negatives intact
    assert np.all(new[(src == 1) & (new != 1)] == -1)
    pos_frac, _, n_pos, _ = kept_fractions(src, new)
    assert within_se(pos_frac, 0.6, n_pos)
    report = wrapper.report()
    assert report['requested_positive_fraction'] == pytest.approx(0.6)
    assert report['realised_negative_fraction'] == 1
    assert report['wrong_label_fraction'] == 0
    assert report['num_images_lost_all_positives'] > 0  # none forced


def test_missing_positives_as_negatives(source):
    """COMIC's own binary encoding: a missing positive is written 0."""
    src = source.get_tristate_labels()
    wrapper = build(source, mode='missing_positives', missing_rate=0.4,
                    missing_as='negative', seed=7)
    new = wrapper.get_tristate_labels()
    np.testing.assert_array_equal(new == -1, src == -1)
    missing = (src == 1) & (new == 0)
    assert missing.sum() == np.floor(0.4 * (src == 1).sum() + 0.5)
    # same draw as with missing_as='unknown'
    unknown = build(source, mode='missing_positives', missing_rate=0.4,
                    seed=7).get_tristate_labels()
    np.testing.assert_array_equal(missing, (src == 1) & (unknown == -1))
    assert wrapper.report()['wrong_label_fraction'] > 0


def test_missing_rate_zero_changes_nothing(source):
    wrapper = build(source, mode='missing_positives', missing_rate=0.)
    np.testing.assert_array_equal(wrapper.get_tristate_labels(),
                                  source.get_tristate_labels())


# -- shared properties ------------------------------------------------------
MODES = [
    dict(mode='pal', keep_ratio=0.5),
    dict(mode='ppl', keep_ratio=0.5),
    dict(mode='spl'),
    dict(mode='missing_positives', missing_rate=0.4),
]


@pytest.mark.parametrize('kwargs', MODES, ids=lambda kw: kw['mode'])
def test_unknown_inputs_stay_unknown_and_seeds_decide(source, kwargs):
    src = source.get_tristate_labels()
    first = build(source, seed=11, **kwargs).get_tristate_labels()
    assert np.all(first[src == -1] == -1)
    np.testing.assert_array_equal(
        build(source, seed=11, **kwargs).get_tristate_labels(), first)
    assert (build(source, seed=12, **kwargs).get_tristate_labels()
            != first).any()
    assert first.dtype == np.int8 and first.shape == src.shape


def test_all_unknown_source_stays_unknown():
    labels = np.full((50, K), -1, np.int8)
    for kwargs in MODES:
        new = build(ArrayDataset(labels), **kwargs).get_tristate_labels()
        np.testing.assert_array_equal(new, labels)


@pytest.fixture(scope='module')
def digits():
    return LongTailMultiDigits(
        split='train', max_class_size=60, imbalance_ratio=6,
        pipeline=[dict(type='PackMultiLabelInputs')])


def test_clean_labels_are_kept(digits):
    source = digits.get_tristate_labels()
    wrapper = build(digits, mode='ppl', keep_ratio=0.5)
    assert len(wrapper) == len(digits)
    np.testing.assert_array_equal(wrapper.get_clean_tristate_labels(),
                                  source)
    changed = np.flatnonzero(
        (wrapper.get_tristate_labels() != source).any(1))[0]
    info = wrapper.get_data_info(int(changed))
    np.testing.assert_array_equal(info['gt_tristate_clean'], source[changed])
    assert (info['gt_tristate'] != source[changed]).any()
    packed = wrapper[int(changed)]['data_samples']
    assert packed.sample_idx == changed
    np.testing.assert_array_equal(packed.gt_tristate.numpy(),
                                  wrapper.get_tristate_labels()[changed])
    # nested: SPL of a missing-positives set; the clean labels are still the
    # original ones and unknowns of the inner wrapper stay unknown
    inner = build(digits, mode='missing_positives', missing_rate=0.4)
    outer = build(inner, mode='spl', seed=3)
    np.testing.assert_array_equal(outer.get_clean_tristate_labels(), source)
    inner_labels = inner.get_tristate_labels()
    assert np.all(outer.get_tristate_labels()[inner_labels != 1] == -1)


def test_pick_per_row():
    rng = np.random.default_rng(0)
    mask = rng.random((500, 9)) < 0.3
    for m in (0, 1, 2):
        picked = pick_per_row(mask, m, rng)
        assert not (picked & ~mask).any()
        np.testing.assert_array_equal(picked.sum(1),
                                      np.minimum(mask.sum(1), m))


@pytest.mark.parametrize('kwargs, match', [
    (dict(mode='partial'), r"unknown mode 'partial'"),
    (dict(mode='pal'), r"mode 'pal' needs keep_ratio"),
    (dict(mode='pal', keep_ratio=0.), r'keep_ratio must be in \(0, 1\], '
     r'got 0\.0'),
    (dict(mode='ppl', keep_ratio=1.5), r'keep_ratio must be in \(0, 1\], '
     r'got 1\.5'),
    (dict(mode='missing_positives'), 'needs missing_rate'),
    (dict(mode='missing_positives', missing_rate=1.0),
     r'missing_rate must be in \[0, 1\), got 1\.0'),
    (dict(mode='missing_positives', missing_rate=-0.1),
     r'missing_rate must be in \[0, 1\), got -0\.1'),
    (dict(mode='spl', keep_ratio=0.5), r'keep_ratio=0\.5 is not used by '
     r"mode 'spl'"),
    (dict(mode='pal', keep_ratio=0.5, missing_rate=0.4),
     r"missing_rate=0\.4 is not used by mode 'pal'"),
    (dict(mode='pal', keep_ratio=0.5, sampling='stratified'),
     r"unknown sampling 'stratified'"),
    (dict(mode='ppl', keep_ratio=0.5, min_positives=-1),
     r'min_positives must be an integer >= 0, got -1'),
    (dict(mode='spl', min_positives=2), r"mode 'spl' keeps exactly one"),
    (dict(mode='pal', keep_ratio=0.5, missing_as='negative'),
     r"applies to mode 'missing_positives' only"),
    (dict(mode='missing_positives', missing_rate=0.4, missing_as='zero'),
     r"missing_as must be 'unknown' or 'negative', got 'zero'"),
])
def test_errors(kwargs, match):
    dataset = ArrayDataset(np.zeros((3, K), np.int8))
    with pytest.raises(ValueError, match=match):
        MissingLabelDataset(dataset, **kwargs)


# -- configs --------------------------------------------------------------
def test_digits_partial_config_builds():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/datasets/digits_lt_partial.py'))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert isinstance(dataset, MissingLabelDataset)
    assert dataset.mode == 'missing_positives'
    source = dataset.get_clean_tristate_labels()
    new = dataset.get_tristate_labels()
    assert len(dataset) == len(source) > 1000
    np.testing.assert_array_equal(new == 0, source == 0)
    pos_frac, _, n_pos, _ = kept_fractions(source, new)
    assert (new[source == 1] != 1).sum() == np.floor(
        0.4 * n_pos.sum() + 0.5)
    assert within_se(pos_frac, 0.6, n_pos)
    packed = dataset[0]
    assert packed['inputs'].shape == (3, 40, 40)
    np.testing.assert_array_equal(packed['data_samples'].gt_tristate.numpy(),
                                  new[0])


@pytest.mark.parametrize('name', ['coco_partial', 'digits_lt_partial',
                                  'plt_coco', 'plt_voc', 'digits_plt'])
def test_partial_configs_parse(name):
    cfg = Config.fromfile(
        osp.join(REPO, f'configs/_base_/datasets/{name}.py'))
    train = cfg.train_dataloader.dataset
    assert train.type == 'MissingLabelDataset'
    assert '_delete_' not in cfg.pretty_text
    if name.startswith('plt') or name == 'digits_plt':
        assert train.mode == 'missing_positives'
        assert train.missing_rate == 0.4
        assert train.dataset.type == 'LongTailSubsetDataset'
        evaluators = cfg.val_evaluator
        if isinstance(evaluators, dict):
            evaluators = [evaluators]
        for evaluator in evaluators:
            assert evaluator.train_dataset.type == 'LongTailSubsetDataset'
        # the arguments are those of LongTailSubsetDataset
        from mlimb_mm.datasets.wrappers import LongTailSubsetDataset
        signature = inspect.signature(LongTailSubsetDataset)
        for args in [train.dataset] + [e.train_dataset for e in evaluators]:
            args = dict(args)
            assert args.pop('type') == 'LongTailSubsetDataset'
            signature.bind(**args)
    elif name == 'coco_partial':
        assert (train.mode, train.keep_ratio) == ('pal', 0.6)


def test_digits_plt_config_builds():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/datasets/digits_plt.py'))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    subset = dataset.dataset
    assert type(subset).__name__ == 'LongTailSubsetDataset'
    clean = dataset.get_clean_tristate_labels()
    new = dataset.get_tristate_labels()
    np.testing.assert_array_equal(clean, subset.get_tristate_labels())
    np.testing.assert_array_equal(new == 0, clean == 0)
    assert (new[clean == 1] == -1).sum() == np.floor(
        0.4 * (clean == 1).sum() + 0.5)
    # long-tailed: the metric's groups many / medium / few all exist, and
    # its class counts are the subset's full labels
    counts = (clean == 1).sum(0)
    assert counts.max() > 100 and counts.min() < 20
    assert ((counts >= 20) & (counts <= 100)).any()
    for evaluator in cfg.val_evaluator:
        counter = DATASETS.build(evaluator.train_dataset)
        np.testing.assert_array_equal(counter.get_class_counts(), counts)
    assert dataset[0]['inputs'].shape == (3, 40, 40)


# -- command line ---------------------------------------------------------
def load_cli():
    return load_script('tools/dataset_converters/make_missing_labels.py')


def write_random_coco(root, num_images=300, num_classes=6, seed=0):
    """A COCO instances file (no image files needed), and its labels."""
    rng = np.random.default_rng(seed)
    categories = [dict(id=10 + c, name=f'cat{c}') for c in range(num_classes)]
    images = [dict(id=i + 1, file_name=f'{i:04d}.jpg', height=8, width=8)
              for i in range(num_images)]
    labels = rng.random((num_images, num_classes)) < 0.35
    labels[np.arange(num_images), rng.integers(0, num_classes,
                                               num_images)] = True
    rows, cols = np.nonzero(labels)
    annotations = [
        dict(id=k + 1, image_id=int(r) + 1, category_id=10 + int(c),
             iscrowd=0) for k, (r, c) in enumerate(zip(rows, cols))
    ]
    ann_file = root / 'instances_mini.json'
    ann_file.write_text(json.dumps(
        dict(images=images, categories=categories, annotations=annotations)))
    return ann_file, labels.astype(np.int8)


def test_cli_end_to_end(tmp_path, capsys):
    cli = load_cli()
    ann_file, labels = write_random_coco(tmp_path)
    out = tmp_path / 'out' / 'ppl.json'
    report = cli.main([
        '--source', 'coco', '--ann-file', str(ann_file), '--data-root',
        str(tmp_path), '--img-prefix', 'imgs', '--mode', 'ppl',
        '--keep-ratio', '0.5', '--seed', '3', '--out', str(out)
    ])
    assert 'MissingLabelDataset' in capsys.readouterr().out
    report_file = tmp_path / 'out' / 'ppl.report.json'
    saved = json.loads(report_file.read_text())
    assert saved['mode'] == 'ppl' and saved['keep_ratio'] == 0.5
    assert saved['realised_positive_fraction'] == pytest.approx(
        report['realised_positive_fraction'])
    assert len(saved['realised_positive_fraction_per_class']) == 6

    dataset = TriStateMultiLabelDataset(ann_file=str(out))
    new = dataset.get_tristate_labels()
    assert dataset.CLASSES == tuple(f'cat{c}' for c in range(6))
    assert new.shape == labels.shape
    assert (new == -1).any() and not (new == 0).any()
    assert np.all(labels[new == 1] == 1)
    assert (new == 1).any(1).all()  # one positive at least
    assert (new == 1).sum() == np.floor(0.5 * labels.sum() + 0.5)
    assert dataset.get_data_info(0)['img_path'] == osp.join(
        str(tmp_path), 'imgs', '0000.jpg')
    content = json.loads(out.read_text())
    np.testing.assert_array_equal(
        [d['gt_tristate_clean'] for d in content['data_list']], labels)

    # composition: the output is the input of the next builder
    out2 = tmp_path / 'chained.json'
    cli.main([
        '--source', 'tristate', '--ann-file', str(out), '--mode', 'spl',
        '--out', str(out2), '--report', str(tmp_path / 'chained_report.json')
    ])
    chained = TriStateMultiLabelDataset(ann_file=str(out2))
    assert ((chained.get_tristate_labels() == 1).sum(1) == 1).all()
    assert np.all(new[chained.get_tristate_labels() == 1] == 1)
    assert (tmp_path / 'chained_report.json').exists()


def test_cli_missing_positives_and_errors(tmp_path):
    cli = load_cli()
    ann_file, labels = write_random_coco(tmp_path, seed=1)
    out = tmp_path / 'plt.json'
    cli.main([
        '--source', 'coco', '--ann-file', str(ann_file), '--mode',
        'missing_positives', '--missing-rate', '0.4', '--out', str(out)
    ])
    new = TriStateMultiLabelDataset(ann_file=str(out)).get_tristate_labels()
    np.testing.assert_array_equal(new == 0, labels == 0)
    assert (new == -1).sum() == np.floor(0.4 * labels.sum() + 0.5)
    with pytest.raises(SystemExit, match="mode 'pal' needs keep_ratio"):
        cli.main(['--source', 'coco', '--ann-file', str(ann_file),
                  '--mode', 'pal', '--out', str(tmp_path / 'x.json')])
    with pytest.raises(SystemExit, match=r'keep_ratio must be in \(0, 1\]'):
        cli.main(['--source', 'coco', '--ann-file', str(ann_file),
                  '--mode', 'ppl', '--keep-ratio', '2',
                  '--out', str(tmp_path / 'x.json')])
