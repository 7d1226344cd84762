import json

import numpy as np
import pytest

from mlimb_mm.datasets import LongTailMultiDigits
from mlimb_mm.datasets.wrappers import BaseLabelWrapper


class DropFirstHideClassZero(BaseLabelWrapper):
    """Keeps samples 1.. and makes class 0 unknown everywhere."""

    def build_labels(self, labels, rng):
        indices = np.arange(1, len(labels))
        new = labels[indices].copy()
        new[:, 0] = -1
        return indices, new


@pytest.fixture(scope='module')
def digits():
    return LongTailMultiDigits(
        split='train', max_class_size=40, imbalance_ratio=4,
        pipeline=[dict(type='PackMultiLabelInputs')])


def test_wrapper_replaces_labels_and_keeps_clean_ones(digits):
    wrapper = DropFirstHideClassZero(digits)
    source = digits.get_tristate_labels()
    assert len(wrapper) == len(digits) - 1
    assert (wrapper.get_tristate_labels()[:, 0] == -1).all()
    np.testing.assert_array_equal(wrapper.get_clean_tristate_labels(),
                                  source[1:])
    info = wrapper.get_data_info(0)
    assert info['sample_idx'] == 0
    np.testing.assert_array_equal(info['gt_tristate_clean'], source[1])
    assert 0 not in info['gt_label']
    packed = wrapper[0]['data_samples']
    assert packed.gt_tristate[0] == -1 and packed.sample_idx == 0


def test_nested_wrappers_keep_the_original_clean_labels(digits):
    outer = DropFirstHideClassZero(DropFirstHideClassZero(digits))
    np.testing.assert_array_equal(outer.get_clean_tristate_labels(),
                                  digits.get_tristate_labels()[2:])


def test_report_and_dump_annotation(digits, tmp_path):
    wrapper = DropFirstHideClassZero(digits)
    report = wrapper.report()
    assert report['num_samples'] == len(digits) - 1
    assert report['class_counts'][0] == 0
    assert report['unknown_fraction'] == pytest.approx(0.1)
    json.dumps(report)
    with pytest.raises(ValueError, match='no img_path'):
        wrapper.dump_annotation(str(tmp_path / 'x.json'), progress=False)


def test_wrapper_needs_tristate_labels():
    class Plain:
        metainfo = {}

        def full_init(self):
            pass

    with pytest.raises(TypeError, match="get_tristate_labels"):
        DropFirstHideClassZero(Plain())
