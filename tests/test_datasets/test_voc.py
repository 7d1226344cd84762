"""mmpretrain's VOC dataset through PackMultiLabelInputs(num_classes=20)."""
import cv2
import numpy as np
import pytest
import torch

import mlimb_mm  # noqa: F401  (fills the registries)
from mmpretrain.datasets import VOC
from mmpretrain.registry import DATASETS

# VOC2007 class indices used below
CAT, CHAIR, DOG, PERSON = 7, 8, 11, 14

# image id -> [(class name, difficult)]
OBJECTS = {
    '000001': [('dog', 0), ('person', 1)],
    '000002': [('cat', 0), ('chair', 0), ('cat', 0)],
    '000004': [],  # no object
}


def xml(objects):
    body = ''.join(
        f'<object><name>{name}</name><pose>Left</pose>'
        f'<truncated>0</truncated><difficult>{difficult}</difficult>'
        '<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>'
        '</bndbox></object>' for name, difficult in objects)
    return (f'<annotation><folder>VOC2007</folder><size><width>16</width>'
            f'<height>12</height><depth>3</depth></size>{body}</annotation>')


def make_voc(root, objects=OBJECTS):
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for img_id, objs in objects.items():
        (root / 'Annotations' / f'{img_id}.xml').write_text(xml(objs))
        cv2.imwrite(str(root / 'JPEGImages' / f'{img_id}.jpg'),
                    rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    (root / 'ImageSets/Main/trainval.txt').write_text(
        '\n'.join(objects) + '\n')
    return root


def build(root, **pack_kwargs):
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=32),
        dict(type='PackMultiLabelInputs', num_classes=20, **pack_kwargs),
    ]
    return DATASETS.build(
        dict(type='VOC', data_root=str(root), split='trainval',
             pipeline=pipeline))


def expected_tristate(positives, unknowns=(), difficult_value=-1):
    tristate = np.zeros(20, np.int8)
    tristate[list(unknowns)] = difficult_value
    tristate[list(positives)] = 1
    return tristate


def check(sample, idx, tristate, img_id):
    assert sample.sample_idx == idx
    assert sample.img_path.endswith(f'JPEGImages/{img_id}.jpg')
    assert sample.gt_tristate.dtype == torch.int8
    np.testing.assert_array_equal(sample.gt_tristate.numpy(), tristate)
    assert sample.gt_score.dtype == torch.float32
    np.testing.assert_array_equal(sample.gt_score.numpy(),
                                  (tristate == 1).astype(np.float32))
    np.testing.assert_array_equal(sample.gt_label.numpy(),
                                  np.flatnonzero(tristate == 1))


def test_voc_raw_annotations(tmp_path):
    dataset = build(make_voc(tmp_path / 'VOC2007'))
    assert isinstance(dataset, VOC)
    assert len(dataset) == 3
    assert dataset.CLASSES[CAT] == 'cat'
    assert dataset.CLASSES[PERSON] == 'person'
    info = dataset.get_data_info(0)
    assert info['gt_label'] == [DOG]
    assert info['gt_label_difficult'] == [PERSON]
    assert sorted(dataset.get_data_info(1)['gt_label']) == [CAT, CHAIR]


def test_voc_pack_default_difficult_unknown(tmp_path):
    dataset = build(make_voc(tmp_path / 'VOC2007'))
    expected = [
        expected_tristate([DOG], [PERSON]),
        expected_tristate([CAT, CHAIR]),
        expected_tristate([]),
    ]
    for idx, img_id in enumerate(OBJECTS):
        packed = dataset[idx]
        assert packed['inputs'].shape == (3, 32, 32)
        check(packed['data_samples'], idx, expected[idx], img_id)
    # the difficult person is unknown (-1), not a negative
    assert dataset[0]['data_samples'].gt_tristate[PERSON].item() == -1
    assert dataset[0]['data_samples'].gt_score[PERSON].item() == 0


@pytest.mark.parametrize('difficult_as, value', [('positive', 1),
                                                 ('negative', 0)])
def test_voc_pack_difficult_as(tmp_path, difficult_as, value):
    dataset = build(make_voc(tmp_path / 'VOC2007'), difficult_as=difficult_as)
    check(dataset[0]['data_samples'], 0,
          expected_tristate([DOG], [PERSON], value), '000001')


def test_voc_pack_bad_difficult_as(tmp_path):
    with pytest.raises(ValueError, match="difficult_as='maybe'"):
        build(make_voc(tmp_path / 'VOC2007'), difficult_as='maybe')


def test_voc_pack_class_both_difficult_and_not(tmp_path):
    # A class with a plain and a difficult object is positive, as in
    # mmpretrain's VOCMultiLabelMetric; only difficult-only classes are -1.
    objects = {'000003': [('person', 0), ('person', 1), ('dog', 1)]}
    dataset = build(make_voc(tmp_path / 'VOC2007', objects))
    info = dataset.get_data_info(0)
    assert info['gt_label'] == [PERSON]
    assert sorted(info['gt_label_difficult']) == [DOG, PERSON]
    check(dataset[0]['data_samples'], 0,
          expected_tristate([PERSON], [DOG]), '000003')
