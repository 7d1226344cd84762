import json
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest
import torch

import mlimb_mm  # noqa: F401  (fills the registries)
from mlimb_mm.datasets import TriStateMultiLabelDataset
from mmpretrain.registry import DATASETS

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=32),
    dict(type='PackMultiLabelInputs'),
]
CLASSES = ('cat', 'dog', 'bird')

# error messages name rows by line number: header = row 1, the blank line
# is row 4, a row appended to TABLE is row 7
TABLE = ('img_path,cat,dog,bird\n'
         'a.jpg,1,0,-1\n'
         'b.jpg,0,,1\n'
         '\n'
         'c.jpg,+1,1.0, -1 \n'
         'sub/d.jpg,-1,-1,0\n')
# rows a, b, c, sub/d; b's dog is empty (unknown by default)
TABLE_EXPECTED = np.array([
    [1, 0, -1],
    [0, -1, 1],
    [1, 1, -1],
    [-1, -1, 0],
], dtype=np.int8)
TABLE_IMAGES = ['a.jpg', 'b.jpg', 'c.jpg', 'sub/d.jpg']


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_images(root, names):
    rng = np.random.default_rng(0)
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name),
                    rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))


def build(ann_file, **kwargs):
    cfg = dict(type='TriStateMultiLabelDataset', ann_file=str(ann_file))
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def check_pipeline(dataset, expected, names):
    for idx in range(len(dataset)):
        packed = dataset[idx]
        assert packed['inputs'].shape == (3, 32, 32)
        sample = packed['data_samples']
        assert sample.sample_idx == idx
        assert sample.img_path.endswith(names[idx])
        assert sample.gt_tristate.dtype == torch.int8
        np.testing.assert_array_equal(sample.gt_tristate.numpy(),
                                      expected[idx])
        assert sample.gt_score.dtype == torch.float32
        np.testing.assert_array_equal(sample.gt_score.numpy(),
                                      (expected[idx] == 1).astype(np.float32))
        np.testing.assert_array_equal(sample.gt_label.numpy(),
                                      np.flatnonzero(expected[idx] == 1))


# --------------------------------------------------------------- table
def test_table_csv(tmp_path):
    ann_file = write(tmp_path / 'labels.csv', TABLE)
    dataset = build(ann_file, data_prefix=str(tmp_path / 'imgs'))
    assert isinstance(dataset, TriStateMultiLabelDataset)
    assert dataset.CLASSES == CLASSES
    assert len(dataset) == 4
    labels = dataset.get_tristate_labels()
    assert labels.dtype == np.int8
    np.testing.assert_array_equal(labels, TABLE_EXPECTED)
    np.testing.assert_array_equal(dataset.get_class_counts(), [2, 1, 1])
    info = dataset.get_data_info(3)
    assert info['img_path'] == osp.join(str(tmp_path / 'imgs'), 'sub/d.jpg')
    assert info['gt_label'] == []
    assert dataset.get_data_info(2)['gt_label'] == [0, 1]
    assert [dataset.get_cat_ids(i) for i in range(4)] == [[0], [2], [0, 1],
                                                         []]


@pytest.mark.parametrize('serialize_data', [True, False])
def test_table_pipeline(tmp_path, serialize_data):
    ann_file = write(tmp_path / 'labels.csv', TABLE)
    write_images(tmp_path / 'imgs', TABLE_IMAGES)
    dataset = build(
        'labels.csv',
        data_root=str(tmp_path),
        data_prefix=dict(img_path='imgs'),
        pipeline=PIPELINE,
        serialize_data=serialize_data)
    assert dataset.ann_file == str(ann_file)
    check_pipeline(dataset, TABLE_EXPECTED, TABLE_IMAGES)


def test_table_tsv_and_default_negative(tmp_path):
    ann_file = write(tmp_path / 'labels.tsv', TABLE.replace(',', '\t'))
    dataset = build(ann_file)
    np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                  TABLE_EXPECTED)
    # default_label=0: the empty cell (b.jpg, dog) becomes a negative, the
    # explicit -1 stay unknown
    dataset = build(ann_file, default_label=0)
    expected = TABLE_EXPECTED.copy()
    expected[1, 1] = 0
    np.testing.assert_array_equal(dataset.get_tristate_labels(), expected)
    # a tab separated .txt is recognised from its header
    ann_file = write(tmp_path / 'labels.txt', TABLE.replace(',', '\t'))
    np.testing.assert_array_equal(build(ann_file).get_tristate_labels(),
                                  TABLE_EXPECTED)


def test_table_given_classes_subset(tmp_path):
    ann_file = write(tmp_path / 'labels.csv', TABLE)
    dataset = build(ann_file, classes=['bird', 'cat'])
    assert dataset.CLASSES == ('bird', 'cat')
    np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                  TABLE_EXPECTED[:, [2, 0]])
    np.testing.assert_array_equal(dataset.get_class_counts(), [1, 2])
    assert dataset.get_data_info(1)['gt_label'] == [0]
    with pytest.raises(ValueError,
                       match=r"\['fish'\] are not classes of .*labels\.csv"):
        build(ann_file, metainfo=dict(classes=['cat', 'fish']))


@pytest.mark.parametrize('bad_row, match', [
    ('e.jpg,1,2,0', r"row 7 of .*labels\.csv, class 'dog': label '2' is "
     r'not 1, 0, -1 or empty'),
    ('e.jpg,1,yes,0', r"row 7 of .*labels\.csv, class 'dog': label 'yes'"),
    ('e.jpg,1,0.5,0', r"row 7 of .*labels\.csv, class 'dog': label '0\.5'"),
    ('e.jpg,1,0', r'row 7 of .*labels\.csv: expected 4 columns \(img_path '
     r'and 3 classes\), got 3'),
    ('e.jpg,1,0,0,1', r'row 7 of .*labels\.csv: expected 4 columns'),
    ('b.jpg,1,0,0', r"row 7 of .*labels\.csv: image 'b\.jpg' already given "
     r'in row 3'),
    (',1,0,0', r'row 7 of .*labels\.csv: empty img_path'),
])
def test_table_errors(tmp_path, bad_row, match):
    ann_file = write(tmp_path / 'labels.csv', TABLE + bad_row + '\n')
    with pytest.raises(ValueError, match=match):
        build(ann_file)


def test_table_bad_header(tmp_path):
    ann_file = write(tmp_path / 'labels.csv', 'file,cat,dog\na.jpg,1,0\n')
    with pytest.raises(ValueError, match=r'row 1 of .*labels\.csv: the '
                       'header must be `img_path`'):
        build(ann_file)
    ann_file = write(tmp_path / 'labels.csv', 'img_path,cat,,dog\n')
    with pytest.raises(ValueError, match='empty class name'):
        build(ann_file)
    ann_file = write(tmp_path / 'labels.csv', 'img_path,cat,cat\na.jpg,1,0\n')
    for classes in (None, ['cat']):
        with pytest.raises(ValueError, match=r"class 'cat' appears twice in "
                           r'the classes of .*labels\.csv'):
            build(ann_file, classes=classes)


def test_table_header_only(tmp_path):
    ann_file = write(tmp_path / 'labels.csv', 'img_path,cat,dog\n')
    with pytest.raises(ValueError, match=r'labels\.csv has no samples'):
        build(ann_file)


# ---------------------------------------------------------------- json
JSON_ENTRIES = [
    dict(img_path='a.jpg', gt_tristate=[1, 0, -1]),
    dict(img_path='b.jpg', positive=[2], negative=[0]),
    dict(img_path='c.jpg', positive=['dog']),
    dict(img_path='d.jpg', negative=[0, 'bird']),
]
JSON_EXPECTED = np.array([
    [1, 0, -1],
    [0, -1, 1],
    [-1, 1, -1],
    [0, -1, 0],
], dtype=np.int8)


def write_json(path, entries=JSON_ENTRIES, classes=CLASSES, **meta):
    metainfo = dict(meta)
    if classes is not None:
        metainfo['classes'] = list(classes)
    return write(path, json.dumps(dict(metainfo=metainfo,
                                       data_list=entries)))


def test_json(tmp_path):
    ann_file = write_json(tmp_path / 'ann.json', dataset_name='toy')
    dataset = build(ann_file, data_prefix=dict(img_path='imgs'))
    assert dataset.CLASSES == CLASSES
    assert dataset.metainfo['dataset_name'] == 'toy'
    np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                  JSON_EXPECTED)
    np.testing.assert_array_equal(dataset.get_class_counts(), [1, 1, 1])
    assert dataset.get_data_info(1)['img_path'] == osp.join('imgs', 'b.jpg')
    # absent labels as negatives; dense labels are kept as they are
    dataset = build(ann_file, default_label=0)
    expected = np.where(JSON_EXPECTED == -1, 0, JSON_EXPECTED)
    expected[0, 2] = -1
    np.testing.assert_array_equal(dataset.get_tristate_labels(), expected)


def test_json_pipeline(tmp_path):
    ann_file = write_json(tmp_path / 'ann.json')
    write_images(tmp_path / 'imgs', ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg'])
    dataset = build(
        ann_file, data_prefix=str(tmp_path / 'imgs'), pipeline=PIPELINE)
    check_pipeline(dataset, JSON_EXPECTED,
                   ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg'])


def test_json_classes_given_not_in_file(tmp_path):
    ann_file = write_json(tmp_path / 'ann.json', classes=None)
    with pytest.raises(ValueError, match=r'no class names for .*ann\.json'):
        build(ann_file)
    dataset = build(ann_file, classes=list(CLASSES))
    np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                  JSON_EXPECTED)
    # classes given and in the file: a subset, in the given order
    ann_file = write_json(tmp_path / 'ann2.json')
    dataset = build(ann_file, metainfo=dict(classes=('dog', 'cat')))
    assert dataset.CLASSES == ('dog', 'cat')
    np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                  JSON_EXPECTED[:, [1, 0]])


def test_pickle_annotation_file(tmp_path):
    ann_file = tmp_path / 'ann.pkl'
    with open(ann_file, 'wb') as f:
        pickle.dump(dict(metainfo=dict(classes=list(CLASSES)),
                         data_list=JSON_ENTRIES), f)
    np.testing.assert_array_equal(build(ann_file).get_tristate_labels(),
                                  JSON_EXPECTED)


@pytest.mark.parametrize('entry, match', [
    (dict(img_path='e.jpg', gt_tristate=[1, 2, 0]),
     r"data_list\[4\] \(e\.jpg\) of .*ann\.json: label 2 of class 'dog' is "
     r'not 1, 0 or -1'),
    (dict(img_path='e.jpg', gt_tristate=[1, 0]),
     r'data_list\[4\] \(e\.jpg\) of .*ann\.json: `gt_tristate` has 2 labels, '
     r'expected 3'),
    (dict(img_path='e.jpg', positive=[7]),
     r'data_list\[4\] \(e\.jpg\) of .*ann\.json, `positive`: label index 7 '
     r'out of range \[0, 3\)'),
    (dict(img_path='e.jpg', negative=[-1]),
     r'`negative`: label index -1 out of range'),
    (dict(img_path='e.jpg', positive=['fish']),
     r"data_list\[4\] \(e\.jpg\) .*: class 'fish' is not in the class list"),
    (dict(img_path='e.jpg', positive=[1.5]),
     r'1\.5 is neither a class index nor a class name'),
    (dict(img_path='e.jpg', positive=[0, 1], negative=['cat']),
     r'data_list\[4\] .*: classes \[0\] are both positive and negative'),
    (dict(img_path='e.jpg', positive=[0], gt_tristate=[1, 0, 0]),
     'not both'),
    (dict(img_path='e.jpg'), r'data_list\[4\] \(e\.jpg\) .*: no labels'),
    (dict(gt_tristate=[1, 0, 0]), r'data_list\[4\] \(None\) .*: no '
     '`img_path`'),
    (dict(img_path='c.jpg', positive=[0]),
     r"data_list\[4\] \(c\.jpg\) of .*: image 'c\.jpg' already given by "
     r'data_list\[2\]'),
])
def test_json_errors(tmp_path, entry, match):
    ann_file = write_json(tmp_path / 'ann.json', JSON_ENTRIES + [entry])
    with pytest.raises(ValueError, match=match):
        build(ann_file)


def test_json_without_data_list(tmp_path):
    ann_file = write(tmp_path / 'ann.json', json.dumps([1, 2]))
    with pytest.raises(ValueError, match=r'ann\.json must hold a dict'):
        build(ann_file)


@pytest.mark.parametrize('name, text', [
    ('ann.json', '{"metainfo": {"classes": ["cat"]}, "data_list": [\n'),
    ('ann.json', ''),
    ('ann.yaml', 'data_list: [a, b\n'),
])
def test_unparsable_annotation_file_is_named(tmp_path, name, text):
    # the parser's own message (e.g. "Expecting value: line 2 column 1")
    # does not say which file it read
    ann_file = write(tmp_path / name, text)
    with pytest.raises(ValueError, match=r'cannot parse the annotation file '
                       r'.*' + name.replace('.', r'\.')):
        build(ann_file)


def test_unparsable_pickle_is_named(tmp_path):
    ann_file = tmp_path / 'ann.pkl'
    ann_file.write_bytes(b'not a pickle')
    with pytest.raises(ValueError, match=r'cannot parse the annotation file '
                       r'.*ann\.pkl'):
        build(ann_file)


@pytest.mark.parametrize('classes', [CLASSES, None])
def test_json_with_empty_data_list(tmp_path, classes):
    ann_file = write_json(tmp_path / 'ann.json', entries=[], classes=classes)
    with pytest.raises(ValueError, match=r'ann\.json holds no samples: its '
                       r'`data_list` is empty'):
        build(ann_file)


# ---------------------------------------------------------- openimages
OI_CSV = ('ImageID,Source,LabelName,Confidence\n'
          '000a,verification,/m/cat,1\n'
          '000a,verification,/m/dog,0\n'
          '000b,crowdsource-verification,/m/bird,1\n'
          '000a,verification,/m/cat,1\n'  # identical repeat: fine
          '000c,verification,/m/dog,0.0\n'
          '000b,verification,/m/cat,0\n')
OI_CLASSES = ('/m/cat', '/m/dog', '/m/bird')
OI_EXPECTED = np.array([
    [1, 0, -1],  # 000a
    [0, -1, 1],  # 000b
    [-1, 0, -1],  # 000c
], dtype=np.int8)


def test_openimages(tmp_path):
    ann_file = write(tmp_path / 'human_labels.csv', OI_CSV)
    class_file = write(tmp_path / 'classes.txt', '\n'.join(OI_CLASSES))
    dataset = build(
        ann_file, classes=str(class_file), data_prefix=str(tmp_path / 'im'))
    assert dataset.CLASSES == OI_CLASSES
    np.testing.assert_array_equal(dataset.get_tristate_labels(), OI_EXPECTED)
    np.testing.assert_array_equal(dataset.get_class_counts(), [1, 0, 1])
    assert [dataset.get_data_info(i)['img_path'] for i in range(3)] == [
        osp.join(str(tmp_path / 'im'), f'{i}.jpg')
        for i in ('000a', '000b', '000c')
    ]
    # absent pairs as negatives
    dataset = build(ann_file, metainfo=dict(classes=OI_CLASSES),
                    default_label=0, img_suffix='.png')
    np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                  np.maximum(OI_EXPECTED, 0))
    assert dataset.get_data_info(0)['img_path'] == '000a.png'


def test_openimages_pipeline(tmp_path):
    ann_file = write(tmp_path / 'human_labels.csv', OI_CSV)
    write_images(tmp_path / 'im', ['000a.jpg', '000b.jpg', '000c.jpg'])
    dataset = build(
        ann_file,
        classes=list(OI_CLASSES),
        data_prefix=dict(img_path=str(tmp_path / 'im')),
        pipeline=PIPELINE)
    check_pipeline(dataset, OI_EXPECTED, ['000a.jpg', '000b.jpg', '000c.jpg'])


def test_openimages_unknown_class(tmp_path):
    ann_file = write(tmp_path / 'human_labels.csv',
                     OI_CSV + '000d,verification,/m/fish,1\n')
    with pytest.raises(ValueError, match=r"row 8 of .*human_labels\.csv: "
                       r"class '/m/fish' is not in the class list"):
        build(ann_file, classes=list(OI_CLASSES))
    # skipped on request; 000d has no other row, so it is not a sample
    dataset = build(
        ann_file, classes=list(OI_CLASSES), skip_unknown_classes=True)
    np.testing.assert_array_equal(dataset.get_tristate_labels(), OI_EXPECTED)
    # a subset of classes
    dataset = build(ann_file, classes=['/m/bird', '/m/dog'],
                    skip_unknown_classes=True)
    assert len(dataset) == 3
    np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                  [[-1, 0], [1, -1], [-1, 0]])


@pytest.mark.parametrize('bad_row, match', [
    ('000d,verification,/m/cat,0.5',
     r"row 8 of .*human_labels\.csv: Confidence '0\.5' is not 1"),
    ('000d,verification,/m/cat,-1', r"Confidence '-1' is not 1"),
    ('000a,verification,/m/dog,1',
     r"rows 3 and 8 of .*human_labels\.csv: image '000a', class '/m/dog' is "
     r'labelled both 0 and 1'),
    ('000d,/m/cat,1', r'row 8 of .*human_labels\.csv: expected 4 columns'),
    (',verification,/m/cat,1', r'row 8 of .*: empty ImageID'),
])
def test_openimages_errors(tmp_path, bad_row, match):
    ann_file = write(tmp_path / 'human_labels.csv', OI_CSV + bad_row + '\n')
    with pytest.raises(ValueError, match=match):
        build(ann_file, classes=list(OI_CLASSES))


def test_openimages_needs_classes(tmp_path):
    ann_file = write(tmp_path / 'human_labels.csv', OI_CSV)
    with pytest.raises(ValueError, match=r'human_labels\.csv is an Open '
                       'Images style label file'):
        build(ann_file)


def test_openimages_forced_format_missing_column(tmp_path):
    ann_file = write(tmp_path / 'labels.csv', TABLE)
    with pytest.raises(ValueError, match=r"row 1 of .*labels\.csv: no "
                       r"column\(s\) \['ImageID', 'LabelName', 'Confidence'"):
        build(ann_file, ann_format='openimages', classes=list(CLASSES))


# -------------------------------------------------------------- general
def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'nowhere\.csv.* not found'):
        build(tmp_path / 'nowhere.csv')


def test_bad_arguments(tmp_path):
    ann_file = write(tmp_path / 'labels.csv', TABLE)
    with pytest.raises(ValueError, match='ann_format'):
        build(ann_file, ann_format='xml')
    with pytest.raises(ValueError, match='default_label must be -1'):
        build(ann_file, default_label=1)
    ann_file = write(tmp_path / 'labels.xml', TABLE)
    with pytest.raises(ValueError, match=r"cannot tell the format of .*"
                       r"labels\.xml"):
        build(ann_file)
    # ... unless the format is given
    dataset = build(ann_file, ann_format='table')
    np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                  TABLE_EXPECTED)


def test_large_table_matches_naive(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.choice([-1, 0, 1], size=(3000, 25)).astype(np.int8)
    spellings = {1: ['1', '+1', '1.0'], 0: ['0', '0.0', '-0'],
                 -1: ['-1', '', '-1.0']}
    lines = ['img_path,' + ','.join(f'c{k}' for k in range(25))]
    for i, row in enumerate(labels):
        lines.append(f'{i}.jpg,' + ','.join(
            spellings[int(v)][rng.integers(3)] for v in row))
    ann_file = write(tmp_path / 'big.csv', '\n'.join(lines) + '\n')
    dataset = build(ann_file)
    np.testing.assert_array_equal(dataset.get_tristate_labels(), labels)
    np.testing.assert_array_equal(dataset.get_class_counts(),
                                  (labels == 1).sum(0))


def test_subset_and_repr(tmp_path):
    ann_file = write(tmp_path / 'labels.csv', TABLE)
    dataset = build(ann_file)
    subset = dataset.get_subset([3, 0])
    assert subset.CLASSES == CLASSES
    np.testing.assert_array_equal(subset.get_tristate_labels(),
                                  TABLE_EXPECTED[[3, 0]])
    np.testing.assert_array_equal(subset.get_class_counts(), [1, 0, 0])
    text = repr(dataset)
    assert 'Number of samples: \t4' in text
    assert 'Number of categories: \t3' in text
    assert 'Default label: \t-1' in text


def test_json_keeps_clean_labels_written_by_the_builders(tmp_path):
    ann = tmp_path / 'noisy.json'
    ann.write_text(json.dumps(dict(
        metainfo=dict(classes=['a', 'b', 'c']),
        data_list=[
            dict(img_path='x.jpg', gt_tristate=[1, 1, 0],
                 gt_tristate_clean=[1, 0, 0]),
            dict(img_path='y.jpg', gt_tristate=[-1, 0, 1],
                 gt_tristate_clean=[0, 0, 1]),
        ])))
    dataset = TriStateMultiLabelDataset(ann_file=str(ann))
    np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                  [[1, 1, 0], [-1, 0, 1]])
    np.testing.assert_array_equal(dataset.get_clean_tristate_labels(),
                                  [[1, 0, 0], [0, 0, 1]])
    subset = TriStateMultiLabelDataset(
        ann_file=str(ann), metainfo=dict(classes=['c', 'a']))
    np.testing.assert_array_equal(subset.get_clean_tristate_labels(),
                                  [[0, 1], [1, 0]])
    # Without clean labels in the file, the training labels are the clean
    # ones.
    plain = tmp_path / 'plain.json'
    plain.write_text(json.dumps(dict(
        metainfo=dict(classes=['a']),
        data_list=[dict(img_path='x.jpg', gt_tristate=[1])])))
    plain_set = TriStateMultiLabelDataset(ann_file=str(plain))
    np.testing.assert_array_equal(plain_set.get_clean_tristate_labels(),
                                  [[1]])
