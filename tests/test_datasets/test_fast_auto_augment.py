"""FastAutoContrast / FastEqualize make mmcv's images, pixel for pixel."""
import mmcv
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.datasets.transforms.auto_augment import RANDAUG_POLICIES
from mmpretrain.registry import TRANSFORMS

from mlimb_mm.datasets.transforms import FAST_SIMPLE_INCREASING
from mlimb_mm.datasets.transforms.auto_augment import (auto_contrast,
                                                      equalize)


def _images():
    rng = np.random.default_rng(0)
    yield rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)  # dense
    yield rng.integers(40, 90, (8, 8, 3), dtype=np.uint8)  # narrow range
    canvas = np.zeros((32, 32, 3), np.uint8)  # a digit-like canvas
    canvas[8:20, 10:14] = (255, 30, 200)
    canvas[20:24, 4:30, 1] = 77
    yield canvas
    yield np.full((5, 6, 3), 128, np.uint8)  # every channel constant
    mixed = rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)
    mixed[..., 1] = 3  # one constant channel
    mixed[..., 2] = np.where(mixed[..., 2] > 128, 255, 0)  # two values
    yield mixed
    for _ in range(20):  # sparse histograms
        values = rng.choice(256, size=rng.integers(2, 6), replace=False)
        yield rng.choice(values, (12, 10, 3)).astype(np.uint8)


@pytest.mark.parametrize('img', list(_images()))
def test_same_images_as_mmcv(img):
    expected_contrast = mmcv.auto_contrast(img)
    expected_equalized = mmcv.imequalize(img)
    assert np.array_equal(auto_contrast(img), expected_contrast)
    assert np.array_equal(equalize(img), expected_equalized)
    assert auto_contrast(img).dtype == np.uint8
    assert equalize(img).dtype == np.uint8


def test_rand_augment_draws_and_images_unchanged():
    init_default_scope('mmpretrain')
    images = list(_images())

    def run(policies):
        augment = TRANSFORMS.build(
            dict(type='RandAugment', policies=policies, num_policies=2,
                 magnitude_level=9, magnitude_std=0.5,
                 hparams=dict(pad_val=0)))
        np.random.seed(3)
        return [augment(dict(img=img.copy()))['img'] for img in images * 4]

    fast, reference = run(FAST_SIMPLE_INCREASING), run('simple_increasing')
    assert all(np.array_equal(a, b) for a, b in zip(fast, reference))
    # the two histogram transforms did run
    assert sum(not np.array_equal(a, b)
               for a, b in zip(fast, images * 4)) > 10


def test_other_images_fall_back_to_mmcv():
    init_default_scope('mmpretrain')
    img = np.random.default_rng(1).integers(0, 256, (6, 7, 3))  # int64
    for name, reference in (('Equalize', mmcv.imequalize),
                            ('AutoContrast', mmcv.auto_contrast)):
        fast = TRANSFORMS.build(dict(type=f'Fast{name}', prob=1.0))
        out = fast(dict(img=img.copy()))['img']
        assert np.array_equal(out, reference(img).astype(img.dtype))


def test_refinement_config_uses_the_simple_increasing_policies():
    cfg = Config.fromfile('configs/_base_/hooks/digits_label_refinement.py')
    policies = cfg.refinement.view_transforms[0].policies
    assert [dict(p) for p in policies] == FAST_SIMPLE_INCREASING
    names = [p['type'] for p in RANDAUG_POLICIES['simple_increasing']]
    assert [p['type'].replace('Fast', '') for p in policies] == names
