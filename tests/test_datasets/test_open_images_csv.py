"""The official Open Images CSV layout: human-verified image labels
(ImageID,Source,LabelName,Confidence) with the class descriptions
(LabelName,DisplayName) as TriStateMultiLabelDataset reads them: verified
positive 1, verified negative 0, absent -1 (unknown)."""
import numpy as np
import pytest
from mmpretrain.registry import DATASETS

import mlimb_mm  # noqa: F401
from mlimb_mm.datasets.tristate_multilabel import read_class_descriptions
from mlimb_mm.structures.label_store import LabelStore

LABELS = (
    'ImageID,Source,LabelName,Confidence\n'
    '0001eeaf4aed83f9,verification,/m/0cmf2,1\n'
    '0001eeaf4aed83f9,verification,/m/0k4j,0\n'
    '0001eeaf4aed83f9,crowdsource-verification,/m/01g317,1\n'
    '000595fe6fee6369,verification,/m/02wbm,1\n'
    '000595fe6fee6369,verification,/m/0cmf2,0\n'
    '000595fe6fee6369,verification,/m/99zzz,1\n'  # not a described class
    '00075905539074f2,verification,/m/0k4j,1\n')
DESCRIPTIONS = ('LabelName,DisplayName\n'
                '/m/0cmf2,Airplane\n'
                '/m/0k4j,Car\n'
                '/m/01g317,Person\n'
                '/m/02wbm,"Food, dish"\n'
                '/m/0xxxx,Never labelled\n')


def write(path, text):
    path.write_text(text)
    return str(path)


def build(tmp_path, **kwargs):
    return DATASETS.build(
        dict(type='TriStateMultiLabelDataset',
             ann_file=write(tmp_path /
                            'oidv6-train-annotations-human-imagelabels.csv',
                            LABELS),
             data_prefix=dict(img_path='train/'), **kwargs))


def test_official_layout_with_class_descriptions(tmp_path):
    write(tmp_path / 'oidv6-class-descriptions.csv', DESCRIPTIONS)
    dataset = build(tmp_path, data_root=str(tmp_path),
                    class_descriptions='oidv6-class-descriptions.csv',
                    skip_unknown_classes=True)
    assert dataset.CLASSES == ('/m/0cmf2', '/m/0k4j', '/m/01g317', '/m/02wbm',
                               '/m/0xxxx')
    assert list(dataset.metainfo['display_names']) == [
        'Airplane', 'Car', 'Person', 'Food, dish', 'Never labelled'
    ]
    expected = np.array([
        [1, 0, 1, -1, -1],  # verified positives / negatives, rest unknown
        [0, -1, -1, 1, -1],  # the row of an undescribed class is skipped
        [-1, 1, -1, -1, -1],
    ], dtype=np.int8)
    np.testing.assert_array_equal(dataset.get_tristate_labels(), expected)
    assert dataset.get_data_info(0)['img_path'].endswith(
        'train/0001eeaf4aed83f9.jpg')
    # what the label store of a training run holds
    store = LabelStore(dataset.get_tristate_labels())
    assert int((store['observed'] == -1).sum()) == 9


def test_boxable_descriptions_without_header_and_errors(tmp_path):
    boxable = write(tmp_path / 'class-descriptions-boxable.csv',
                    '/m/0k4j,Car\n/m/0cmf2,Airplane\n')
    names, display = read_class_descriptions(boxable)
    assert names == ['/m/0k4j', '/m/0cmf2'] and display == ['Car', 'Airplane']
    dataset = build(tmp_path, class_descriptions=boxable,
                    skip_unknown_classes=True)
    np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                  [[0, 1], [-1, 0], [1, -1]])
    # without skip_unknown_classes an undescribed class is an error
    with pytest.raises(ValueError, match="class '/m/01g317' is not in"):
        build(tmp_path, class_descriptions=boxable)
    with pytest.raises(ValueError, match='not both'):
        build(tmp_path, class_descriptions=boxable, classes=['/m/0k4j'])
    bad = write(tmp_path / 'bad.csv', '/m/0k4j,Car\n/m/0k4j,Car again\n')
    with pytest.raises(ValueError, match='twice'):
        read_class_descriptions(bad)
    bad = write(tmp_path / 'bad2.csv', '/m/0k4j\n')
    with pytest.raises(ValueError, match='row 1 of'):
        read_class_descriptions(bad)
    with pytest.raises(FileNotFoundError):
        read_class_descriptions(str(tmp_path / 'missing.csv'))
