import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlimb_mm.datasets import LongTailMultiDigits
from mlimb_mm.datasets.long_tail_multi_digits import (
    assign_classes_to_images, long_tail_class_sizes, split_digit_indices)


def test_long_tail_class_sizes_profile():
    sizes = long_tail_class_sizes(10, 1000, 100)
    assert sizes[0] == 1000 and sizes[-1] == 10
    expected = 1000 * 100.0**(-np.arange(10) / 9)
    np.testing.assert_allclose(sizes, expected, atol=0.5)
    assert (np.diff(sizes) < 0).all()


@pytest.mark.parametrize('max_per_image', [1, 2, 3])
def test_assign_classes_meets_sizes_exactly(max_per_image):
    rng = np.random.default_rng(3)
    sizes = np.array([500, 200, 90, 40, 7, 1])
    images = assign_classes_to_images(sizes, max_per_image, rng)
    counts = np.bincount(np.concatenate(images), minlength=len(sizes))
    np.testing.assert_array_equal(counts, sizes)
    lengths = np.array([len(i) for i in images])
    assert lengths.min() >= 1 and lengths.max() <= max_per_image
    assert all(len(np.unique(i)) == len(i) for i in images)


def test_split_digit_indices_disjoint_and_stratified():
    labels = load_digits().target
    train, test = split_digit_indices(labels, 0.5,
                                      np.random.default_rng(0))
    assert len(np.intersect1d(train, test)) == 0
    assert len(train) + len(test) == len(labels)
    for cls in range(10):
        n_test, n_all = (labels[test] == cls).sum(), (labels == cls).sum()
        assert abs(n_test - n_all / 2) <= 1


@pytest.fixture(scope='module')
def train_set():
    return LongTailMultiDigits(split='train', seed=0)


def test_train_split_is_long_tailed(train_set):
    counts = train_set.get_class_counts()
    np.testing.assert_array_equal(counts, long_tail_class_sizes(10, 1000,
                                                                100))
    assert counts[0] / counts[-1] == pytest.approx(100)
    tristate = train_set.get_tristate_labels()
    assert tristate.dtype == np.int8 and set(np.unique(tristate)) <= {0, 1}
    digits_per_image = tristate.sum(1)
    assert digits_per_image.min() >= 1 and digits_per_image.max() <= 3


def test_sample_format(train_set):
    info = train_set.get_data_info(5)
    assert info['img'].shape == (40, 40, 3) and info['img'].dtype == np.uint8
    assert info['sample_idx'] == 5
    np.testing.assert_array_equal(
        np.flatnonzero(info['gt_tristate'] == 1), info['gt_label'])
    assert train_set.get_cat_ids(5) == list(info['gt_label'])
    # Each present digit leaves ink on the canvas.
    assert info['img'].max() > 100


def test_test_split_is_near_balanced():
    test_set = LongTailMultiDigits(split='test', num_test_images=1000)
    counts = test_set.get_class_counts()
    assert len(test_set) == 1000
    assert counts.max() / counts.min() < 1.5


def test_deterministic_given_seed(train_set):
    again = LongTailMultiDigits(split='train', seed=0)
    other = LongTailMultiDigits(split='train', seed=1)
    np.testing.assert_array_equal(train_set.get_tristate_labels(),
                                  again.get_tristate_labels())
    np.testing.assert_array_equal(train_set[7]['img'], again[7]['img'])
    assert not np.array_equal(train_set[7]['img'], other[7]['img'])


def test_bad_arguments_name_the_option():
    with pytest.raises(ValueError, match='split'):
        LongTailMultiDigits(split='val')
    with pytest.raises(ValueError, match='imbalance_ratio'):
        LongTailMultiDigits(imbalance_ratio=0.5)
    with pytest.raises(ValueError, match='digit_size'):
        LongTailMultiDigits(canvas_size=16, digit_size=(14, 20))
