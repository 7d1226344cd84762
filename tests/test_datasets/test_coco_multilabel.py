import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

import mlimb_mm  # noqa: F401  (fills the registries)
from mlimb_mm.datasets import CocoMultiLabelDataset
from mlimb_mm.datasets.coco_multilabel import COCO_CATEGORIES
from mmpretrain.registry import DATASETS

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=32),
    dict(type='PackMultiLabelInputs'),
]

# categories listed out of id order, sparse ids 1, 3, 90
CATEGORIES = [
    dict(id=90, name='toothbrush'),
    dict(id=1, name='person'),
    dict(id=3, name='car'),
]
IMAGES = [
    dict(id=10, file_name='a.jpg', height=12, width=16),
    dict(id=20, file_name='b.jpg', height=12, width=16),  # no annotation
    dict(id=5, file_name='c.jpg', height=12, width=16),
    dict(id=7, file_name='d.jpg', height=12, width=16),  # crowd only
]
ANNOTATIONS = [
    dict(id=1, image_id=10, category_id=1, iscrowd=0),
    dict(id=2, image_id=10, category_id=1, iscrowd=0),  # same class twice
    dict(id=3, image_id=10, category_id=90, iscrowd=0),
    dict(id=4, image_id=5, category_id=3, iscrowd=0),
    dict(id=5, image_id=7, category_id=3, iscrowd=1),
]
CLASSES = ('person', 'car', 'toothbrush')
# rows in the order of `images`; columns person, car, toothbrush
EXPECTED = np.array([
    [1, 0, 1],  # a.jpg
    [0, 0, 0],  # b.jpg, no annotation
    [0, 1, 0],  # c.jpg
    [0, 1, 0],  # d.jpg, crowd counts as positive
], dtype=np.int8)


def write_coco(root, images=IMAGES, annotations=ANNOTATIONS,
               categories=CATEGORIES, name='instances_mini.json',
               with_images=True):
    root.mkdir(parents=True, exist_ok=True)
    coco = dict(images=images, categories=categories)
    if annotations is not None:
        coco['annotations'] = annotations
    ann_file = root / name
    ann_file.write_text(json.dumps(coco))
    if with_images:
        (root / 'imgs').mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        for img in images:
            cv2.imwrite(
                str(root / 'imgs' / img['file_name']),
                rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    return ann_file


def build(ann_file, **kwargs):
    cfg = dict(type='CocoMultiLabelDataset', ann_file=str(ann_file))
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_labels_and_classes(tmp_path):
    ann_file = write_coco(tmp_path)
    dataset = build(
        ann_file, data_prefix=dict(img_path=str(tmp_path / 'imgs')))
    assert isinstance(dataset, CocoMultiLabelDataset)
    assert dataset.CLASSES == CLASSES
    assert dataset.metainfo['classes'] == CLASSES
    assert len(dataset) == 4
    labels = dataset.get_tristate_labels()
    assert labels.dtype == np.int8
    np.testing.assert_array_equal(labels, EXPECTED)
    np.testing.assert_array_equal(dataset.get_class_counts(), [1, 2, 1])
    assert dataset.get_class_counts().dtype == np.int64

    info = dataset.get_data_info(0)
    assert info['img_path'] == osp.join(str(tmp_path / 'imgs'), 'a.jpg')
    assert info['img_id'] == 10
    assert info['gt_label'] == [0, 2]
    assert info['gt_tristate'].dtype == np.int8
    assert dataset.get_data_info(1)['gt_label'] == []
    assert dataset.get_data_info(3)['img_id'] == 7
    assert [dataset.get_cat_ids(i) for i in range(4)] == [[0, 2], [], [1],
                                                         [1]]


@pytest.mark.parametrize('serialize_data', [True, False])
def test_pipeline_end_to_end(tmp_path, serialize_data):
    ann_file = write_coco(tmp_path)
    dataset = build(
        ann_file,
        data_prefix=dict(img_path=str(tmp_path / 'imgs')),
        pipeline=PIPELINE,
        serialize_data=serialize_data)
    for idx in range(len(dataset)):
        packed = dataset[idx]
        assert packed['inputs'].shape == (3, 32, 32)  # Resize(scale=32)
        sample = packed['data_samples']
        assert sample.sample_idx == idx
        assert sample.img_path.endswith(IMAGES[idx]['file_name'])
        assert sample.gt_tristate.dtype == torch.int8
        np.testing.assert_array_equal(sample.gt_tristate.numpy(),
                                      EXPECTED[idx])
        np.testing.assert_array_equal(sample.gt_score.numpy(),
                                      EXPECTED[idx].astype(np.float32))
        assert sample.gt_score.dtype == torch.float32
        np.testing.assert_array_equal(sample.gt_label.numpy(),
                                      np.flatnonzero(EXPECTED[idx] == 1))


def test_data_root_and_relative_paths(tmp_path):
    write_coco(tmp_path / 'coco', name='instances_val.json')
    dataset = build(
        'instances_val.json',
        data_root=str(tmp_path / 'coco'),
        data_prefix=dict(img_path='imgs'),
        check_images=True)
    assert dataset.ann_file == osp.join(str(tmp_path / 'coco'),
                                        'instances_val.json')
    assert dataset.get_data_info(2)['img_path'] == osp.join(
        str(tmp_path / 'coco'), 'imgs', 'c.jpg')
    # data_prefix given as a plain string
    dataset = build(
        tmp_path / 'coco' / 'instances_val.json',
        data_prefix=str(tmp_path / 'coco' / 'imgs'))
    assert dataset.get_data_info(0)['img_path'] == osp.join(
        str(tmp_path / 'coco' / 'imgs'), 'a.jpg')


def test_keep_empty_false(tmp_path):
    ann_file = write_coco(tmp_path, with_images=False)
    dataset = build(ann_file, keep_empty=False)
    assert len(dataset) == 3
    assert [dataset.get_data_info(i)['img_id']
            for i in range(3)] == [10, 5, 7]
    np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                  EXPECTED[[0, 2, 3]])
    np.testing.assert_array_equal(dataset.get_class_counts(), [1, 2, 1])
    # keep_empty=True (default) keeps the image without annotation
    assert len(build(ann_file, keep_empty=True)) == 4


def test_no_sample_left(tmp_path):
    ann_file = write_coco(tmp_path, annotations=[], with_images=False)
    assert len(build(ann_file)) == 4  # all negative
    with pytest.raises(ValueError, match=r'instances_mini\.json has no '
                       r'samples with a positive label \(keep_empty=False\)'):
        build(ann_file, keep_empty=False)


def test_given_classes_subset(tmp_path):
    ann_file = write_coco(tmp_path, with_images=False)
    dataset = build(ann_file, metainfo=dict(classes=['toothbrush', 'person']))
    assert dataset.CLASSES == ('toothbrush', 'person')
    np.testing.assert_array_equal(
        dataset.get_tristate_labels(),
        [[1, 1], [0, 0], [0, 0], [0, 0]])
    # `car` annotations are ignored, so c.jpg and d.jpg become empty
    dataset = build(ann_file, classes=['person', 'toothbrush'],
                    keep_empty=False)
    assert len(dataset) == 1
    assert dataset.get_data_info(0)['img_id'] == 10
    np.testing.assert_array_equal(dataset.get_tristate_labels(), [[1, 1]])
    # a class file, one name per line
    class_file = tmp_path / 'classes.txt'
    class_file.write_text('car\nperson\n')
    dataset = build(ann_file, classes=str(class_file))
    assert dataset.CLASSES == ('car', 'person')
    np.testing.assert_array_equal(dataset.get_class_counts(), [2, 1])


def test_given_classes_not_in_file(tmp_path):
    ann_file = write_coco(tmp_path, with_images=False)
    with pytest.raises(ValueError, match=r"\['dog'\] are not classes of .*"
                       r'instances_mini\.json'):
        build(ann_file, metainfo=dict(classes=['person', 'dog']))
    with pytest.raises(ValueError, match="class 'car' appears twice in the "
                       'classes of the given `classes`'):
        build(ann_file, classes=['car', 'person', 'car'])


def test_default_metainfo_before_loading(tmp_path):
    ann_file = write_coco(tmp_path, with_images=False)
    dataset = build(ann_file, lazy_init=True)
    assert len(COCO_CATEGORIES) == 80
    assert dataset.CLASSES == COCO_CATEGORIES
    dataset.full_init()
    assert dataset.CLASSES == CLASSES


def test_names_fall_back_to_coco_categories(tmp_path):
    categories = [dict(id=i) for i in range(1, 81)]
    annotations = [dict(id=1, image_id=10, category_id=80)]
    ann_file = write_coco(
        tmp_path, images=IMAGES[:1], annotations=annotations,
        categories=categories, with_images=False)
    dataset = build(ann_file)
    assert dataset.CLASSES == COCO_CATEGORIES
    assert dataset.get_data_info(0)['gt_label'] == [79]


def test_file_without_annotations_is_unknown(tmp_path):
    ann_file = write_coco(tmp_path, annotations=None, with_images=False)
    dataset = build(ann_file, keep_empty=False)
    assert len(dataset) == 4
    np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                  np.full((4, 3), -1))
    np.testing.assert_array_equal(dataset.get_class_counts(), [0, 0, 0])


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'nowhere\.json.* not found'):
        build(tmp_path / 'nowhere.json')


def test_unknown_category(tmp_path):
    annotations = ANNOTATIONS + [
        dict(id=77, image_id=10, category_id=91, iscrowd=0)
    ]
    ann_file = write_coco(tmp_path, annotations=annotations,
                          with_images=False)
    with pytest.raises(
            ValueError,
            match=r'unknown category 91 in annotation id 77 of image 10 in '
            r'.*instances_mini\.json'):
        build(ann_file)


def test_annotation_of_missing_image(tmp_path):
    annotations = ANNOTATIONS + [
        dict(id=78, image_id=999, category_id=1, iscrowd=0)
    ]
    ann_file = write_coco(tmp_path, annotations=annotations,
                          with_images=False)
    with pytest.raises(
            ValueError,
            match=r'annotation id 78 of .*instances_mini\.json refers to '
            r'image 999, which has no entry'):
        build(ann_file)


def test_duplicated_category_name(tmp_path):
    categories = CATEGORIES + [dict(id=4, name='car')]
    ann_file = write_coco(tmp_path, categories=categories, with_images=False)
    with pytest.raises(ValueError, match=r"class 'car' appears twice in the "
                       r'classes of .*instances_mini\.json'):
        build(ann_file)


def test_duplicated_image_id(tmp_path):
    images = IMAGES + [dict(id=5, file_name='e.jpg')]
    ann_file = write_coco(tmp_path, images=images, with_images=False)
    with pytest.raises(ValueError, match='image id 5 appears more than once'):
        build(ann_file)


def test_unparsable_file_is_named(tmp_path):
    ann_file = tmp_path / 'instances_broken.json'
    ann_file.write_text('{"images": [{"id": 1, "file_name": "a.jpg"}')
    with pytest.raises(ValueError, match=r'cannot parse the annotation file '
                       r'.*instances_broken\.json'):
        CocoMultiLabelDataset(ann_file=str(ann_file))


def test_not_a_coco_file(tmp_path):
    ann_file = tmp_path / 'x.json'
    ann_file.write_text(json.dumps(dict(data_list=[])))
    with pytest.raises(ValueError, match=r'x\.json is not a COCO'):
        build(ann_file)


def test_check_images(tmp_path):
    ann_file = write_coco(tmp_path)
    prefix = dict(img_path=str(tmp_path / 'imgs'))
    # all images exist
    assert len(build(ann_file, data_prefix=prefix, check_images=True)) == 4
    (tmp_path / 'imgs' / 'c.jpg').unlink()
    # not checked by default
    assert len(build(ann_file, data_prefix=prefix)) == 4
    with pytest.raises(FileNotFoundError,
                       match=r"c\.jpg' \(image id 5\) of .*instances_mini"):
        build(ann_file, data_prefix=prefix, check_images=True)


def test_large_random_file_matches_naive(tmp_path):
    """Vectorised label building against a plain per-annotation loop."""
    rng = np.random.default_rng(1)
    cat_ids = np.sort(rng.choice(np.arange(1, 200), 40, replace=False))
    categories = [dict(id=int(c), name=f'c{c}') for c in cat_ids[::-1]]
    img_ids = rng.permutation(np.arange(100, 100 + 3000 * 7, 7))
    images = [dict(id=int(i), file_name=f'{i}.jpg') for i in img_ids]
    ann_imgs = rng.choice(img_ids[:2500], 20000)  # 500 images stay empty
    ann_cats = rng.choice(cat_ids, 20000)
    annotations = [
        dict(id=k, image_id=int(i), category_id=int(c), iscrowd=k % 5 == 0)
        for k, (i, c) in enumerate(zip(ann_imgs, ann_cats))
    ]
    ann_file = write_coco(tmp_path, images=images, annotations=annotations,
                          categories=categories, with_images=False)

    expected = np.zeros((len(images), len(cat_ids)), np.int8)
    row_of = {int(i): r for r, i in enumerate(img_ids)}
    col_of = {int(c): k for k, c in enumerate(cat_ids)}
    for ann in annotations:
        expected[row_of[ann['image_id']], col_of[ann['category_id']]] = 1

    dataset = build(ann_file)
    assert dataset.CLASSES == tuple(f'c{c}' for c in cat_ids)
    np.testing.assert_array_equal(dataset.get_tristate_labels(), expected)
    np.testing.assert_array_equal(dataset.get_class_counts(),
                                  expected.sum(0))
    dataset = build(ann_file, keep_empty=False)
    nonempty = expected.any(1)
    assert len(dataset) == nonempty.sum() == len(np.unique(ann_imgs))
    np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                  expected[nonempty])
