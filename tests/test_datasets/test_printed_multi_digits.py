"""PrintedMultiDigits: the printed-digits pre-training set of the noisy
digits benchmarks."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlimb_mm.datasets import LongTailMultiDigits, PrintedMultiDigits
from mlimb_mm.datasets.printed_multi_digits import render_printed_digit


def test_printed_digits_look_like_sklearn_digits():
    rng = np.random.default_rng(0)
    digit = render_printed_digit(3, rng)
    assert digit.shape == (8, 8) and digit.dtype == np.uint8
    # 17 grey levels, as load_digits' 0..16 scaled like LongTailMultiDigits
    levels = np.round(np.arange(17) * (255 / 16)).astype(np.uint8)
    assert set(np.unique(digit)) <= set(levels)
    assert digit.max() == 255 and (digit == 0).any()


def test_balanced_canvases_with_clean_labels():
    dataset = PrintedMultiDigits(num_images=600, digits_per_class=20, seed=1)
    assert len(dataset) == 600
    labels = dataset.get_tristate_labels()
    assert labels.shape == (600, 10) and set(np.unique(labels)) <= {0, 1}
    assert (labels.sum(1) >= 1).all() and (labels.sum(1) <= 3).all()
    counts = labels.sum(0)
    # uniform classes: every class near the mean (4 standard deviations)
    mean = counts.mean()
    assert (np.abs(counts - mean) < 4 * np.sqrt(mean)).all()
    item = dataset.get_data_info(0)
    assert item['img'].shape == (40, 40, 3)
    np.testing.assert_array_equal(
        np.flatnonzero(labels[0]), item['gt_label'])
    # the same seed gives the same images
    again = PrintedMultiDigits(num_images=600, digits_per_class=20, seed=1)
    np.testing.assert_array_equal(again.get_data_info(5)['img'],
                                  dataset.get_data_info(5)['img'])


def test_no_handwritten_digit_is_used():
    """Every printed base digit differs from every sklearn digit (train and
    test splits of the benchmark alike)."""
    dataset = PrintedMultiDigits(num_images=10, digits_per_class=30)
    printed = np.concatenate(
        dataset._split_base_digits(np.random.default_rng(0)))
    handwritten = np.round(load_digits().images * (255 / 16)).astype(np.uint8)
    flat_p = printed.reshape(len(printed), -1).astype(np.int16)
    flat_h = handwritten.reshape(len(handwritten), -1).astype(np.int16)
    distance = np.abs(flat_p[:, None] - flat_h[None]).sum(-1)
    assert distance.min() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match='num_images'):
        PrintedMultiDigits(num_images=0)
    assert isinstance(PrintedMultiDigits(num_images=5), LongTailMultiDigits)
