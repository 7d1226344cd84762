"""CocoLikeDigits: the COCO-shaped embedded benchmark (80 coloured digit
classes, COCO 2017's label statistics), its label model, its settings and
the label-statistics tool."""
import glob
import itertools
import re
import os.path as osp
import sys

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS
from sklearn.datasets import load_digits

from mlimb_mm.datasets import CocoLikeDigits, PrintedCocoLikeDigits
from mlimb_mm.datasets.coco_like_digits import (COCO_LIKE_CLASSES,
                                                COLOUR_VALUES,
                                                SceneLabelModel,
                                                coco_like_frequencies,
                                                count_without_each_class)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools', 'dataset_converters'))
import label_statistics  # noqa: E402


def phi_z_scores(positives, min_expected=2.):
    """sqrt(N) * phi of every class pair expected together >= min_expected
    times under independence (a plain loop: the reference of the tool's
    vectorised version)."""
    num = len(positives)
    counts = positives.sum(0)
    scores = []
    for i, j in itertools.combinations(range(positives.shape[1]), 2):
        n_i, n_j = counts[i], counts[j]
        if not (0 < n_i < num and 0 < n_j < num):
            continue
        if n_i * n_j / num < min_expected:
            continue
        n_ij = np.sum(positives[:, i] & positives[:, j])
        phi = (num * n_ij - n_i * n_j) / np.sqrt(
            float(n_i) * (num - n_i) * n_j * (num - n_j))
        scores.append(np.sqrt(num) * phi)
    return np.asarray(scores)


@pytest.fixture(scope='module')
def train_set():
    return CocoLikeDigits(split='train', seed=0)


@pytest.fixture(scope='module')
def test_set():
    return CocoLikeDigits(split='test', seed=0)


# -- the class-frequency curve and the label model -----------------------------
def test_frequency_curve_hits_its_anchors_and_mean():
    freq = coco_like_frequencies(80, 0.54, 0.11, 0.002, 2.9)
    assert len(freq) == 80
    assert freq[0] == 0.54 and freq[1] == pytest.approx(0.11)
    assert freq[-1] == pytest.approx(0.002)
    assert freq.sum() == pytest.approx(2.9, abs=1e-9)
    assert (np.diff(freq) <= 0).all()
    # flatter middle, steeper end (COCO's shape): the log-decrease grows
    steps = -np.diff(np.log(freq[1:]))
    assert steps[-1] > steps[0]


@pytest.mark.parametrize('kwargs,option', [
    (dict(head_fraction=0.1), 'head_fraction'),
    (dict(tail_fraction=0.2), 'tail_fraction'),
    (dict(mean_positives=20.), 'mean_positives'),
    (dict(mean_positives=0.5), 'mean_positives'),
])
def test_frequency_curve_refuses_impossible_requests(kwargs, option):
    args = dict(head_fraction=0.54, second_fraction=0.11,
                tail_fraction=0.002, mean_positives=2.9)
    args.update(kwargs)
    with pytest.raises(ValueError, match=option):
        coco_like_frequencies(80, **args)


def test_count_without_each_class_matches_enumeration():
    rng = np.random.default_rng(0)
    presence = rng.uniform(0.05, 0.9, (3, 6))
    cap = 3
    got = count_without_each_class(presence, cap)
    for s, k in itertools.product(range(3), range(6)):
        others = [j for j in range(6) if j != k]
        expected = np.zeros(cap + 1)
        for bits in itertools.product([0, 1], repeat=len(others)):
            prob = np.prod([presence[s, j] if b else 1 - presence[s, j]
                            for j, b in zip(others, bits)])
            expected[min(sum(bits), cap)] += prob
        np.testing.assert_allclose(got[s, k], expected, atol=1e-12)


@pytest.fixture(scope='module')
def model():
    return CocoLikeDigits(split='train', num_train_images=10,
                          seed=0).label_model()


def test_label_model_is_calibrated_after_the_redraws(model):
    np.testing.assert_allclose(model.expected_frequencies(),
                               model.frequencies, rtol=1e-6)
    labels = model.sample(60000, np.random.default_rng(1))
    per_image = labels.sum(1)
    assert per_image.min() >= 1 and per_image.max() <= model.max_positives
    # Monte Carlo against the targets (binomial standard errors)
    freq = model.frequencies
    stderr = np.sqrt(freq * (1 - freq) / len(labels))
    assert np.all(np.abs(labels.mean(0) - freq) < 5 * stderr)
    assert abs(per_image.mean() - freq.sum()) < 0.03


def test_label_model_conditioned_draws_hold_the_class(model):
    rare = int(np.argmin(model.frequencies))
    labels = model.sample_with(rare, 500, np.random.default_rng(2))
    assert labels[:, rare].all()
    assert labels.sum(1).max() <= model.max_positives


def test_scene_affinity_makes_classes_co_occur():
    freq = coco_like_frequencies(80)
    rng = np.random.default_rng(5)
    labels = {}
    for affinity in (0., 0.8):
        model = SceneLabelModel(freq, 12, affinity, 8,
                                np.random.default_rng(0))
        labels[affinity] = model.sample(20000, rng)
    strong = (phi_z_scores(labels[0.8]) > 3).mean()
    none = (phi_z_scores(labels[0.]) > 3).mean()
    assert strong > 0.05 and strong > 4 * none


# -- the splits ---------------------------------------------------------------
def test_train_split_follows_coco_statistics(train_set):
    labels = train_set.get_tristate_labels()
    assert labels.shape == (1500, 80) and labels.dtype == np.int8
    assert set(np.unique(labels)) <= {0, 1}
    positives = labels == 1
    per_image = positives.sum(1)
    assert 2.6 <= per_image.mean() <= 3.2
    assert per_image.min() >= 1 and per_image.max() <= 8
    fractions = positives.mean(0)
    assert 0.45 <= fractions.max() <= 0.62  # COCO 'person': ~54%
    assert fractions.min() < 0.01  # COCO 'hair drier': ~0.16%
    assert train_set.metainfo['classes'] == COCO_LIKE_CLASSES
    assert COCO_LIKE_CLASSES[3 * 8] == 'red 3'


def test_classes_co_occur_more_than_chance(train_set):
    positives = train_set.get_tristate_labels() == 1
    above = (phi_z_scores(positives) > 3).mean()
    # the same class counts with each class shuffled independently
    rng = np.random.default_rng(0)
    shuffled = np.stack([rng.permutation(c) for c in positives.T], 1)
    above_shuffled = (phi_z_scores(shuffled) > 3).mean()
    assert above > 0.03 and above > 3 * above_shuffled


def test_test_split_has_enough_positives_per_class(test_set):
    counts = test_set.get_class_counts()
    assert counts.min() >= 15
    assert len(test_set) >= 2000
    # the natural profile: the head class stays the head
    train_counts = CocoLikeDigits(split='train', num_train_images=10,
                                  seed=0).label_model().frequencies
    assert np.argmax(counts) == np.argmax(train_counts)


def test_small_test_split_is_topped_up():
    small = CocoLikeDigits(split='test', num_test_images=100,
                           min_test_positives=4, seed=3)
    counts = small.get_class_counts()
    assert counts.min() >= 4
    assert 100 < len(small) < 100 + 4 * 80


def test_train_and_test_digits_are_disjoint(train_set, test_set):
    target = load_digits().target

    def digit_ids(dataset):
        ids = []
        for i in range(len(dataset)):
            info = dataset._label_info(i)
            ids.append(info['digit_ids'])
            # an object's base digit is of its class's shape, in its colour
            shapes = np.sort(target[info['digit_ids']] * 8 + info['colours'])
            np.testing.assert_array_equal(shapes, info['gt_label'])
        return np.unique(np.concatenate(ids))

    train_ids, test_ids = digit_ids(train_set), digit_ids(test_set)
    assert len(np.intersect1d(train_ids, test_ids)) == 0
    assert len(train_ids) > 500 and len(test_ids) > 500


def test_objects_carry_their_class_colour():
    dataset = CocoLikeDigits(split='train', num_train_images=300, seed=1)
    checked = 0
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        if len(info['gt_label']) != 1:
            continue
        img = info['img']
        assert img.shape == (48, 48, 3) and img.dtype == np.uint8
        rgb = COLOUR_VALUES[info['gt_label'][0] % 8]
        lit = img.reshape(-1, 3)[img.reshape(-1, 3).max(1) > 0]
        assert len(lit) > 20
        # every lit pixel is the colour scaled by the digit's grey level
        for channel in range(3):
            if rgb[channel] == 0:
                assert (lit[:, channel] == 0).all()
            else:
                assert lit[:, channel].max() > 100
        checked += 1
    assert checked > 20


def test_sample_format_and_pipeline(train_set):
    info = train_set.get_data_info(5)
    assert info['sample_idx'] == 5 and info['img_shape'] == (48, 48)
    np.testing.assert_array_equal(
        np.flatnonzero(info['gt_tristate'] == 1), info['gt_label'])
    assert train_set.get_cat_ids(5) == list(info['gt_label'])
    packed = CocoLikeDigits(
        split='train', num_train_images=20, seed=0,
        pipeline=[dict(type='PackMultiLabelInputs')])[3]
    assert tuple(packed['inputs'].shape) == (3, 48, 48)
    assert packed['data_samples'].metainfo['sample_idx'] == 3


def test_labels_are_read_without_rendering(monkeypatch):
    dataset = CocoLikeDigits(split='train', num_train_images=50, seed=0)

    def no_render(info):
        raise AssertionError('rendered an image to read labels')

    monkeypatch.setattr(dataset, 'render', no_render)
    assert dataset.get_tristate_labels().shape == (50, 80)
    assert dataset.get_class_counts().sum() == \
        (dataset.get_tristate_labels() == 1).sum()
    assert dataset.get_cat_ids(0)


def test_each_image_is_rendered_once_and_handed_out_as_a_copy(monkeypatch):
    dataset = CocoLikeDigits(split='train', num_train_images=30, seed=0)
    fresh = CocoLikeDigits(split='train', num_train_images=30, seed=0)
    rendered = []
    render = dataset.render
    monkeypatch.setattr(dataset, 'render',
                        lambda info: rendered.append(info['img_id']) or
                        render(info))
    first = dataset.get_data_info(4)['img']
    first[:] = 255  # a pipeline writing into its input
    again = dataset.get_data_info(4)['img']
    assert rendered == [4]
    np.testing.assert_array_equal(again, fresh.get_data_info(4)['img'])
    # a subset keeps each image's own canvas
    dataset.get_subset_([9, 4])
    np.testing.assert_array_equal(dataset.get_data_info(0)['img'],
                                  fresh.get_data_info(9)['img'])
    np.testing.assert_array_equal(dataset.get_data_info(1)['img'],
                                  fresh.get_data_info(4)['img'])
    assert rendered == [4, 9]


def test_deterministic_given_seed(train_set):
    again = CocoLikeDigits(split='train', seed=0)
    other = CocoLikeDigits(split='train', seed=1)
    np.testing.assert_array_equal(train_set.get_tristate_labels(),
                                  again.get_tristate_labels())
    np.testing.assert_array_equal(train_set.get_data_info(7)['img'],
                                  again.get_data_info(7)['img'])
    assert not np.array_equal(train_set.get_tristate_labels(),
                              other.get_tristate_labels())
    # the label model depends on the seed only, not on the split sizes
    np.testing.assert_array_equal(
        CocoLikeDigits(num_train_images=10).label_model().presence,
        CocoLikeDigits(split='test', num_test_images=10,
                       min_test_positives=0).label_model().presence)


@pytest.mark.parametrize('kwargs,option', [
    (dict(split='val'), 'split'),
    (dict(num_train_images=0), 'num_train_images'),
    (dict(num_test_images=2.5), 'num_test_images'),
    (dict(max_objects=0), 'max_objects'),
    (dict(max_objects=2), 'mean_positives'),
    (dict(canvas_size=16), 'digit_size'),
    (dict(scene_affinity=1.5), 'scene_affinity'),
    (dict(test_fraction=1.), 'test_fraction'),
    (dict(tail_fraction=0.5), 'tail_fraction'),
])
def test_bad_arguments_name_the_option(kwargs, option):
    with pytest.raises(ValueError, match=option):
        CocoLikeDigits(**kwargs)


def test_printed_variant_is_balanced_and_uses_no_handwritten_digit():
    dataset = PrintedCocoLikeDigits(num_images=800, digits_per_class=10,
                                    seed=1)
    labels = dataset.get_tristate_labels()
    assert labels.shape == (800, 80)
    assert labels.sum(1).min() >= 1 and labels.sum(1).max() <= 4
    counts = labels.sum(0)
    assert (np.abs(counts - counts.mean()) < 5 * np.sqrt(counts.mean())).all()
    assert dataset.get_data_info(0)['img'].shape == (48, 48, 3)
    printed = dataset._digit_pool.reshape(len(dataset._digit_pool), -1)
    handwritten = np.round(load_digits().images * (255 / 16)).reshape(
        1797, -1)
    distance = np.abs(printed[:, None].astype(np.int16) -
                      handwritten[None].astype(np.int16)).sum(-1)
    assert distance.min() > 0
    with pytest.raises(ValueError, match='num_images'):
        PrintedCocoLikeDigits(num_images=0)


# -- the settings and the statistics tool --------------------------------------
COCOLIKE_SETTINGS = sorted(
    glob.glob(osp.join(REPO, 'configs', '_base_', 'datasets',
                       'cocolike*.py')))


def test_every_cocolike_setting_exists():
    names = {osp.basename(p)[:-3] for p in COCOLIKE_SETTINGS}
    assert {'cocolike', 'cocolike_mlt', 'cocolike_noisy',
            'cocolike_noisy_flip', 'cocolike_single_positive',
            'cocolike_partial', 'cocolike_pal30', 'cocolike_pal90',
            'cocolike_ppl60', 'cocolike_spl', 'cocolike_plt'} <= names


@pytest.mark.parametrize('path', COCOLIKE_SETTINGS,
                         ids=lambda p: osp.basename(p))
def test_setting_groups_hold_ten_classes_each(path):
    cfg = Config.fromfile(path)
    init_default_scope('mmpretrain')
    groups = label_statistics.metric_groups(cfg)
    assert groups is not None
    assert min(groups['sizes'].values()) >= 10, groups['sizes']
    assert sum(groups['sizes'].values()) == 80
    # the metrics read the CLEAN training counts of the setting's images
    train = DATASETS.build(cfg.train_dataloader.dataset)
    clean = (train.get_clean_tristate_labels() == 1).sum(0)
    counts = np.zeros(80, np.int64)
    for group, members in groups['members'].items():
        counts[members] += 1
    assert (counts == 1).all()
    low, high = groups['thresholds']
    np.testing.assert_array_equal(
        np.sort(groups['members']['few']), np.flatnonzero(clean < low))
    np.testing.assert_array_equal(
        np.sort(groups['members']['many']), np.flatnonzero(clean > high))


def test_mlt_setting_is_sized_like_coco_mlt():
    stats = label_statistics.setting_statistics(
        osp.join(REPO, 'configs/_base_/datasets/cocolike_mlt.py'))
    counts = np.asarray(stats['class_counts'])
    assert 1200 <= stats['images'] <= 2400  # COCO-MLT: 1,909
    assert counts.min() == 6  # COCO-MLT's tail
    assert 700 <= counts.max() <= 1500  # COCO-MLT's head: 1,128
    assert stats['wrappers'][0]['builder'] == 'LongTailSubsetDataset'


def test_statistics_tool_against_a_direct_count():
    rng = np.random.default_rng(0)
    labels = (rng.random((400, 12)) < 0.2).astype(np.int8)
    labels[:, 1] = labels[:, 0]  # a pair that always co-occurs
    labels[:5, 2] = -1
    clean = labels.copy()
    clean[10, 3] = 1 - clean[10, 3]
    stats = label_statistics.label_statistics(labels, clean)
    positives = labels == 1
    assert stats['images'] == 400
    assert stats['positives_per_image'] == pytest.approx(
        positives.sum(1).mean())
    assert stats['class_counts'] == positives.sum(0).tolist()
    assert stats['head_fraction'] == pytest.approx(positives.sum(0).max() /
                                                   400)
    assert stats['unknown_fraction'] == pytest.approx(5 / 4800)
    assert stats['wrong_label_fraction'] == pytest.approx(1 / 4795)
    co = stats['cooccurrence']
    z = phi_z_scores(positives)
    assert co['num_pairs'] == len(z)
    assert co['share_above_chance'] == pytest.approx((z > 3).mean())
    assert co['top_pairs'][0]['classes'] == [0, 1]


def test_statistics_tool_prints_the_settings_beside_coco(capsys):
    label_statistics.main(['cocolike', 'cocolike_noisy'])
    out = capsys.readouterr().out
    assert 'COCO 2017 train (published / approximate)' in out
    assert '| cocolike |' in out and '| cocolike_noisy |' in out
    assert re.search(r'mislabel (39|40)\.\d%', out)  # realised ~40%
    with pytest.raises(SystemExit):
        label_statistics.parse_args(['no_such_setting'])
