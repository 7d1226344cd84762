"""NoisyLabelDataset: the synthetic label noise of BalanceMix (Song et al.
2024, §Evaluation), its configs and its command-line builder.

The statistical tests draw from a synthetic source with known class counts,
large enough that a wrong noise process fails them while a right one passes
with a wide margin (fixed seeds: the outcome is deterministic)."""
import json
import os.path as osp

import numpy as np
import pytest
from fake_datasets import FakeTriStateDataset
from mmengine.config import Config
from mmpretrain.registry import DATASETS
from scipy import stats

import mlimb_mm  # noqa: F401  (fills the registries)
from mlimb_mm.datasets import TriStateMultiLabelDataset
from mlimb_mm.datasets.wrappers import NoisyLabelDataset
from mlimb_mm.datasets.wrappers.noisy_labels import (
    calibrate_mislabel_weights, requested_mislabel_matrix)
from script_loader import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RHO = 0.4
# class frequencies of the synthetic source: a long tail whose head class
# is in 40% of the images, so collisions with it are frequent
PROBS = np.array([0.40, 0.30, 0.20, 0.12, 0.07, 0.04, 0.02, 0.01])
NUM_IMAGES = 30000
UNKNOWN_FRACTION = 0.02


def synthetic_labels(num_images=NUM_IMAGES, probs=PROBS, seed=0,
                     unknown=UNKNOWN_FRACTION):
    """Independent classes with the frequencies ``probs`` and a few unknown
    labels (never on a positive)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((num_images, len(probs))) < probs).astype(np.int8)
    labels[(rng.random(labels.shape) < unknown) & (labels == 0)] = -1
    return labels


@pytest.fixture(scope='module')
def source():
    return synthetic_labels()


@pytest.fixture(scope='module')
def mislabelled(source):
    return NoisyLabelDataset(FakeTriStateDataset(source), noise_type='mislabel',
                             rho=RHO, seed=1)


def eq11(labels, rho=RHO):
    """Eq. (11) computed here, independently of the module."""
    counts = (labels == 1).sum(0).astype(float)
    total = counts.sum()
    matrix = rho * counts[None, :] / (total - counts[:, None])
    np.fill_diagonal(matrix, 1 - rho)
    return matrix, counts


def within(realised, expected, num, sigmas=4.):
    """A binomial proportion within ``sigmas`` standard errors."""
    se = np.sqrt(expected * (1 - expected) / num)
    return abs(realised - expected) <= sigmas * se


# -- mislabelling -------------------------------------------------------------
def test_requested_matrix_is_eq11(source, mislabelled):
    expected, _ = eq11(source)
    report = mislabelled.report()['mislabel']
    np.testing.assert_allclose(np.array(report['requested_matrix']),
                               expected, atol=1e-6)
    # rows are distributions: the total probability of a move is rho
    np.testing.assert_allclose(expected.sum(1), 1.)
    np.testing.assert_allclose(
        requested_mislabel_matrix((source == 1).sum(0), RHO), expected)


def test_mislabel_overall_and_per_class_rate(source, mislabelled):
    report = mislabelled.report()['mislabel']
    counts = (source == 1).sum(0)
    total = int(counts.sum())
    assert report['num_positives'] == total
    assert report['calibration']['converged']
    assert report['num_unmovable_positives'] == 0
    assert within(report['realised_rate'], RHO, total)
    assert report['realised_rate_std_error'] == pytest.approx(
        np.sqrt(RHO * (1 - RHO) / total))
    for rate, num in zip(report['realised_rate_per_class'], counts):
        assert within(rate, RHO, num)
    # the labels agree with the report: every move clears one positive...
    noisy = mislabelled.get_tristate_labels()
    removed = ((source == 1) & (noisy == 0)).sum()
    added = ((source == 0) & (noisy == 1)).sum()
    assert removed == report['num_moved'] == np.sum(report['move_counts'])
    # ...and sets a known negative; two moves onto one class of one image
    # merge (counted)
    assert added == report['num_moved'] - report['num_merged_moves']
    # (~8% of the moves here: two of the 1.2 positives per image moved at
    # rate 0.4 onto the few classes left; each still realises
    # p(y~_i = 0, y~_j = 1 | y_i = 1))
    assert 0 < report['num_merged_moves'] < 0.15 * report['num_moved']
    # never onto a positive of the image, never onto an unknown label
    assert not ((source == 1) & (noisy != 1) & (noisy != 0)).any()
    np.testing.assert_array_equal(noisy == -1, source == -1)


def test_mislabel_matrix_matches_eq11(source, mislabelled):
    """Chi-square of the realised moves against Eq. (11); the same test
    rejects the naive process (Eq. (11) re-drawn among the image's known
    negatives), so it has the power to fail."""
    requested, counts = eq11(source)
    report = mislabelled.report()['mislabel']
    moves = np.array(report['move_counts'], float)
    off = ~np.eye(len(counts), dtype=bool)
    expected = requested * counts[:, None]
    cells = off & (expected >= 5)
    assert cells.sum() >= 50
    chi2 = ((moves - expected)**2 / expected)[cells].sum()
    p_value = stats.chi2.sf(chi2, cells.sum())
    assert p_value > 1e-3, (chi2, cells.sum())
    # per-cell binomial tolerance on the row-normalised matrix
    realised = np.array(report['realised_matrix'], float)
    se = np.sqrt(requested * (1 - requested) / counts[:, None])
    assert (np.abs(realised - requested) <= 4.5 * se).all()

    # the naive process's expectation differs detectably at this size
    neg = (source == 0).astype(float)
    naive = np.zeros_like(expected)
    for i in range(len(counts)):
        weights = requested[i] * off[i]
        rows = source[:, i] == 1
        share = neg[rows] * weights / (neg[rows] @ weights)[:, None]
        naive[i] = RHO * share.sum(0)
    chi2_naive = ((moves[cells] - naive[cells])**2 / naive[cells]).sum()
    assert stats.chi2.sf(chi2_naive, cells.sum()) < 1e-12


def test_calibration_keeps_rho_where_eq11_is_out_of_reach():
    """Class 1 almost always co-occurs with class 0: the move 1 -> 0 cannot
    reach Eq. (11); the rest of the row takes up its share."""
    labels = synthetic_labels(num_images=4000, probs=[0.5, 0.3, 0.2, 0.1],
                              unknown=0)
    labels[labels[:, 1] == 1, 0] = 1
    labels[np.flatnonzero(labels[:, 1] == 1)[:20], 0] = 0
    counts = (labels == 1).sum(0)
    requested = requested_mislabel_matrix(counts, RHO)
    _, info = calibrate_mislabel_weights(labels, requested, RHO)
    expected = info['expected_matrix']
    assert expected[1, 0] < 20 / counts[1] < requested[1, 0]
    np.testing.assert_allclose(expected.sum(1), 1.)
    # every movable positive (its image has a known negative) moves with
    # probability rho
    movable = info['movable_positives']
    assert (movable < counts).all()  # a few images hold all four classes
    np.testing.assert_allclose(1 - np.diag(expected),
                               RHO * movable / counts)
    dataset = NoisyLabelDataset(FakeTriStateDataset(labels), rho=RHO, seed=0)
    report = dataset.report()['mislabel']
    assert report['num_cells_below_eq11'] >= 1
    assert dict(report['cells_off_eq11'][0], requested=0, expected=0) == \
        dict(source=1, target=0, requested=0, expected=0)
    assert within(report['realised_rate'], RHO, counts.sum())


# -- flipping -----------------------------------------------------------------
def test_flip_rates_positive_and_negative(source):
    dataset = NoisyLabelDataset(FakeTriStateDataset(source), noise_type='flip',
                                rho=0.2, seed=3)
    noisy = dataset.get_tristate_labels()
    report = dataset.report()['flip']
    pos, neg = source == 1, source == 0
    assert report['num_positives'] == pos.sum()
    assert report['num_negatives'] == neg.sum()
    pos_rate = ((noisy == 0) & pos).sum() / pos.sum()
    neg_rate = ((noisy == 1) & neg).sum() / neg.sum()
    assert report['realised_positive_rate'] == pytest.approx(pos_rate)
    assert report['realised_negative_rate'] == pytest.approx(neg_rate)
    assert within(pos_rate, 0.2, pos.sum())
    assert within(neg_rate, 0.2, neg.sum())
    for rate, num in zip(report['realised_positive_rate_per_class'],
                         pos.sum(0)):
        assert within(rate, 0.2, num)
    for rate, num in zip(report['realised_negative_rate_per_class'],
                         neg.sum(0)):
        assert within(rate, 0.2, num)
    np.testing.assert_array_equal(noisy == -1, source == -1)


# -- single positive ----------------------------------------------------------
def test_single_positive_keeps_one_positive(source):
    dataset = NoisyLabelDataset(FakeTriStateDataset(source),
                                noise_type='single_positive', seed=5)
    noisy = dataset.get_tristate_labels()
    has_pos = (source == 1).any(1)
    # images without a positive are dropped by default
    np.testing.assert_array_equal(dataset.source_indices,
                                  np.flatnonzero(has_pos))
    assert ((noisy == 1).sum(1) == 1).all()
    assert ((noisy == 1) | (noisy == -1)).all()
    kept_src = source[dataset.source_indices]
    assert (kept_src[noisy == 1] == 1).all()
    report = dataset.report()['single_positive']
    assert report['num_images_without_positive'] == (~has_pos).sum()
    assert report['num_images_with_one_positive'] == len(dataset)
    # the kept positive is uniform among the image's positives: class k is
    # kept sum_n [k in S_n] / |S_n| times in expectation
    pos = kept_src == 1
    p = pos / pos.sum(1, keepdims=True)
    mean, var = p.sum(0), (p * (1 - p)).sum(0)
    kept = (noisy == 1).sum(0)
    assert (np.abs(kept - mean) <= 4 * np.sqrt(var)).all()
    # first vs second positive of the two-positive images: a fair coin
    two = np.flatnonzero(pos.sum(1) == 2)
    first = np.argmax(pos[two], axis=1)
    took_first = (noisy[two, first] == 1).mean()
    assert within(took_first, 0.5, len(two))

    keep = NoisyLabelDataset(FakeTriStateDataset(source), seed=5,
                             noise_type='single_positive',
                             empty_images='keep')
    assert len(keep) == len(source)
    assert (keep.get_tristate_labels()[~has_pos] == -1).all()
    np.testing.assert_array_equal(keep.get_tristate_labels()[has_pos], noisy)


def test_single_positive_assume_negative(source):
    """missing_as='negative' (Kim et al.'s "assume negative"): the same
    kept positive, every other label 0; only single positive accepts it."""
    unknown = NoisyLabelDataset(FakeTriStateDataset(source), seed=5,
                                noise_type='single_positive')
    negative = NoisyLabelDataset(FakeTriStateDataset(source), seed=5,
                                 noise_type='single_positive',
                                 missing_as='negative')
    a, b = unknown.get_tristate_labels(), negative.get_tristate_labels()
    np.testing.assert_array_equal(a == 1, b == 1)
    assert ((b == 1).sum(1) == 1).all() and (b[a == -1] == 0).all()
    assert negative.report()['single_positive']['missing_as'] == 'negative'
    with pytest.raises(ValueError, match='missing_as'):
        NoisyLabelDataset(FakeTriStateDataset(source), noise_type='flip',
                          missing_as='negative')
    with pytest.raises(ValueError, match='missing_as'):
        NoisyLabelDataset(FakeTriStateDataset(source), noise_type='single_positive',
                          missing_as='zero')


# -- shared behaviour ---------------------------------------------------------
@pytest.mark.parametrize('noise_type', ['mislabel', 'flip', 'single_positive'])
def test_unknown_labels_stay_unknown(noise_type):
    labels = synthetic_labels(num_images=2000, unknown=0.3, seed=4)
    dataset = NoisyLabelDataset(FakeTriStateDataset(labels), noise_type=noise_type,
                                rho=0.45, seed=0, empty_images='keep')
    noisy = dataset.get_tristate_labels()
    assert len(noisy) == len(labels)
    assert (noisy[labels == -1] == -1).all()
    json.dumps(dataset.report(), allow_nan=False)


@pytest.mark.parametrize('noise_type', ['mislabel', 'flip', 'single_positive'])
def test_determinism_per_seed(noise_type):
    labels = synthetic_labels(num_images=3000, seed=6)

    def build(seed):
        return NoisyLabelDataset(FakeTriStateDataset(labels), noise_type=noise_type,
                                 rho=0.3, seed=seed).get_tristate_labels()

    np.testing.assert_array_equal(build(7), build(7))
    assert not np.array_equal(build(7), build(8))


def test_rho_zero_is_clean(source):
    for noise_type in ('mislabel', 'flip'):
        dataset = NoisyLabelDataset(FakeTriStateDataset(source),
                                    noise_type=noise_type, rho=0)
        np.testing.assert_array_equal(dataset.get_tristate_labels(), source)


def test_clean_labels_are_kept(source, mislabelled):
    np.testing.assert_array_equal(mislabelled.get_clean_tristate_labels(),
                                  source)
    changed = np.flatnonzero(
        (mislabelled.get_tristate_labels() != source).any(1))[0]
    info = mislabelled.get_data_info(int(changed))
    np.testing.assert_array_equal(info['gt_tristate_clean'], source[changed])
    assert not np.array_equal(info['gt_tristate'], source[changed])
    assert info['gt_label'] == np.flatnonzero(info['gt_tristate'] == 1
                                              ).tolist()
    # nested: the clean labels of the innermost dataset travel through
    outer = NoisyLabelDataset(mislabelled, noise_type='flip', rho=0.1)
    np.testing.assert_array_equal(outer.get_clean_tristate_labels(), source)
    report = outer.report()
    assert report['flip']['num_positives'] == \
        (mislabelled.get_tristate_labels() == 1).sum()
    assert report['wrong_label_fraction'] > 0.1


def test_errors():
    src = FakeTriStateDataset(synthetic_labels(num_images=50))
    for rho in (1.0, 1.5, -0.1, 'high', None):
        with pytest.raises(ValueError, match=r'rho must be in \[0, 1\), '
                           rf'got rho={rho!r}'):
            NoisyLabelDataset(src, rho=rho)
    with pytest.raises(ValueError, match="noise_type must be one of .*"
                       "got noise_type='label_swap'"):
        NoisyLabelDataset(src, noise_type='label_swap')
    with pytest.raises(ValueError, match="empty_images must be one of"):
        NoisyLabelDataset(src, noise_type='single_positive',
                          empty_images='all')
    # every positive in one class: Eq. (11) has N - N_i = 0
    one_class = np.zeros((20, 3), np.int8)
    one_class[::2, 1] = 1
    with pytest.raises(ValueError, match=r"class 1 \('c1'\) holds all N=10 "
                       r'positive labels and the other 2 classes have zero '
                       r'positives.*N - N_i is 0'):
        NoisyLabelDataset(FakeTriStateDataset(one_class), rho=0.2)
    # harmless without noise, and fine for flip
    NoisyLabelDataset(FakeTriStateDataset(one_class), rho=0.)
    NoisyLabelDataset(FakeTriStateDataset(one_class), noise_type='flip', rho=0.2)


def test_classes_without_positives_receive_no_noise():
    labels = synthetic_labels(num_images=3000, probs=[0.4, 0.3, 0.0, 0.2])
    dataset = NoisyLabelDataset(FakeTriStateDataset(labels), rho=RHO, seed=0)
    assert (dataset.get_tristate_labels()[:, 2] != 1).all()
    report = dataset.report()['mislabel']
    assert report['realised_matrix'][2] == [None] * 4
    assert report['requested_rate_per_class'][2] is None
    json.dumps(report, allow_nan=False)


# -- configs ------------------------------------------------------------------
CONFIGS = {
    'coco_noisy': ('mislabel', (1000, 10000)),
    'coco_noisy_flip': ('flip', (1000, 10000)),
    'coco_single_positive': ('single_positive', (1000, 10000)),
    'voc_noisy': ('mislabel', (1000, 10000)),
    'voc_noisy_flip': ('flip', (1000, 10000)),
    'voc_single_positive': ('single_positive', (1000, 10000)),
    'digits_lt_noisy': ('mislabel', (20, 100)),
    'digits_lt_noisy_flip': ('flip', (20, 100)),
    'digits_lt_single_positive': ('single_positive', (20, 100)),
}


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_configs_parse(name):
    noise_type, thresholds = CONFIGS[name]
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/datasets', f'{name}.py'))
    dataset = cfg.train_dataloader.dataset
    assert dataset.type == 'NoisyLabelDataset'
    assert dataset.noise_type == noise_type
    if noise_type != 'single_positive':
        assert dataset.rho == 0.4
    # the wrapped dataset keeps the pipeline; no base key leaks into the
    # wrapper
    assert 'pipeline' in dataset.dataset
    assert set(dataset) <= {'type', 'dataset', 'noise_type', 'rho', 'seed'}
    # the metrics read the CLEAN training counts: an unwrapped train set
    evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator,
                                                 list) else [cfg.val_evaluator]
    for evaluator in evaluators:
        assert evaluator.train_dataset.type == dataset.dataset.type
        assert 'NoisyLabelDataset' not in str(evaluator.train_dataset)
    assert tuple(evaluators[0].group_thresholds) == thresholds
    assert cfg.test_evaluator == cfg.val_evaluator


def test_digits_noisy_config_builds():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/datasets/digits_lt_noisy.py'))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert isinstance(dataset, NoisyLabelDataset)
    assert len(dataset) == 1238
    report = dataset.report()
    noise = report['mislabel']
    assert noise['num_positives'] == 2480
    assert within(noise['realised_rate'], 0.4, 2480)
    # the statement of the config's comment: moves into '0' are out of reach
    cells = {(c['source'], c['target']): c for c in noise['cells_off_eq11']}
    assert cells[(1, 0)]['requested'] == pytest.approx(0.21, abs=0.005)
    assert cells[(1, 0)]['expected'] < 0.1
    packed = dataset[0]
    assert packed['inputs'].shape == (3, 40, 40)
    np.testing.assert_array_equal(packed['data_samples'].gt_tristate.numpy(),
                                  dataset.get_tristate_labels()[0])
    # the metric's counts are the clean long-tailed ones
    clean = DATASETS.build(cfg.val_evaluator[0].train_dataset)
    np.testing.assert_array_equal(clean.get_class_counts(),
                                  report['clean_class_counts'])


# -- command line -------------------------------------------------------------
def load_cli():
    return load_script('tools/dataset_converters/make_noisy_labels.py')


def write_coco(root, num_images=400, seed=0):
    """A plain-json COCO instances file over 5 categories (sparse ids), no
    image files (the builder only writes paths)."""
    rng = np.random.default_rng(seed)
    cat_ids = [1, 3, 7, 18, 44]
    names = ['person', 'car', 'truck', 'dog', 'bottle']
    categories = [dict(id=c, name=n) for c, n in zip(cat_ids, names)]
    images = [dict(id=100 + 3 * i, file_name=f'{i:012d}.jpg', height=8,
                   width=8) for i in range(num_images)]
    labels = rng.random((num_images, 5)) < [0.6, 0.4, 0.25, 0.15, 0.1]
    labels[np.arange(num_images), rng.integers(0, 5, num_images)] = True
    rows, cols = np.nonzero(labels)
    annotations = [
        dict(id=k + 1, image_id=100 + 3 * int(r),
             category_id=cat_ids[int(c)], iscrowd=0)
        for k, (r, c) in enumerate(zip(rows, cols))
    ]
    ann_file = root / 'instances_mini.json'
    ann_file.write_text(json.dumps(dict(
        images=images, annotations=annotations, categories=categories)))
    return ann_file, labels.astype(np.int8), tuple(names)


def test_cli_end_to_end(tmp_path, capsys):
    ann_file, labels, names = write_coco(tmp_path)
    out = tmp_path / 'out' / 'coco_mislabel.json'
    cli = load_cli()
    report = cli.main([
        '--source', 'coco', '--ann-file', str(ann_file), '--data-root',
        str(tmp_path), '--img-prefix', 'imgs', '--noise-type', 'mislabel',
        '--rho', '0.3', '--seed', '2', '--out', str(out)
    ])
    printed = capsys.readouterr().out
    assert 'NoisyLabelDataset' in printed and 'realised' in printed
    saved = json.loads(
        (tmp_path / 'out' / 'coco_mislabel.report.json').read_text())
    assert saved['source']['type'] == 'CocoMultiLabelDataset'
    assert saved['noise_type'] == 'mislabel' and saved['rho'] == 0.3
    noise = saved['mislabel']
    assert noise == json.loads(json.dumps(report['mislabel']))
    realised = np.array(noise['realised_matrix'], float)
    assert realised.shape == (5, 5)
    np.testing.assert_allclose(realised.sum(1), 1., atol=1e-5)
    np.testing.assert_allclose(np.array(noise['requested_matrix']),
                               eq11(labels, 0.3)[0], atol=1e-6)
    assert within(noise['realised_rate'], 0.3, labels.sum())

    written = TriStateMultiLabelDataset(ann_file=str(out))
    assert written.CLASSES == names
    assert len(written) == len(labels)
    got = written.get_tristate_labels()
    np.testing.assert_array_equal(written.get_class_counts(),
                                  saved['class_counts'])
    assert (got != labels).any()
    removed = ((labels == 1) & (got == 0)).sum()
    assert removed == noise['num_moved']
    info = written.get_data_info(0)
    assert info['img_path'] == osp.join(str(tmp_path), 'imgs',
                                        '000000000000.jpg')
    # the clean labels travel in the file
    clean = np.stack([written.get_data_info(i)['gt_tristate_clean']
                      for i in range(len(written))])
    np.testing.assert_array_equal(clean, labels)

    # single positive, with the report path given
    out2 = tmp_path / 'sp.json'
    sp = cli.main([
        '--source', 'coco', '--ann-file', str(ann_file), '--noise-type',
        'single_positive', '--out', str(out2), '--report',
        str(tmp_path / 'sp_report.json')
    ])
    written = TriStateMultiLabelDataset(ann_file=str(out2))
    assert ((written.get_tristate_labels() == 1).sum(1) == 1).all()
    assert json.loads((tmp_path / 'sp_report.json').read_text())[
        'single_positive']['num_positives_kept'] == len(written) == \
        sp['num_samples']

    # a wrong rate stops before any annotation is read
    with pytest.raises(SystemExit):
        cli.main(['--source', 'coco', '--ann-file', 'missing.json',
                  '--rho', '1.2', '--out', str(tmp_path / 'x.json')])
    assert 'rho must be in [0, 1), got rho=1.2' in capsys.readouterr().err
