"""The configs of configs/partial_labels: each setting, baseline and Table
VII row is what its name says; the Open Images config reads the official
CSV layout."""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmpretrain.registry import DATASETS

import mlimb_mm  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FOLDER = osp.join(REPO, 'configs', 'partial_labels')

SETTINGS = {
    'pal30': dict(mode='pal', keep_ratio=0.3),
    'pal60': dict(mode='pal', keep_ratio=0.6),
    'spl': dict(mode='spl', keep_ratio=None),
}
LOSSES = {
    'an': ('MultiLabelBCELoss', {}),
    'wan': ('AssumeNegativeLoss', dict(unknown_weight='wan')),
    'an_ls': ('AssumeNegativeLoss', dict(label_smoothing=0.1)),
    'focal': ('DistributionBalancedLoss', dict(preset='Focal')),
    'asl': ('MultiLabelAsymmetricLoss', dict(gamma_neg=4., clip=0.05)),
    'pseudo': ('DynamicPartialLoss', dict(q=0.5, m=3, gamma=0.05)),
}


def load(name):
    return Config.fromfile(osp.join(FOLDER, name + '.py'))


@pytest.mark.parametrize('setting', list(SETTINGS))
@pytest.mark.parametrize('method', list(LOSSES) + ['full'])
def test_cocolike_settings_and_methods(setting, method):
    cfg = load(f'resnet18_cocolike_{setting}_{method}')
    dataset = cfg.train_dataloader.dataset
    head = cfg.model.head
    assert cfg.train_cfg.max_epochs == 60
    assert cfg.model.backbone.init_cfg.checkpoint == \
        'embedded://resnet18_printed_cocolike'
    if method == 'full':  # the clean labels of the same images
        assert dataset.type == 'CocoLikeDigits'
        assert dataset.num_train_images == 1500
        assert head.loss.type == 'MultiLabelBCELoss'
        return
    assert dataset.type == 'MissingLabelDataset'
    assert {k: dataset[k] for k in ('mode', 'keep_ratio')} == \
        SETTINGS[setting]
    assert dataset.dataset.type == 'CocoLikeDigits'
    loss_type, args = LOSSES[method]
    assert head.loss.type == loss_type
    assert {k: head.loss[k] for k in args} == args
    assert head.ignore_unknown is False  # unknown labels enter the loss
    assert head.get('pass_tristate', False) == (loss_type in (
        'AssumeNegativeLoss', 'DynamicPartialLoss'))
    hooks = [h.type for h in cfg.get('custom_hooks', [])]
    if method == 'pseudo':
        assert hooks == ['LabelStoreHook', 'PseudoLabelHook']
        # alpha / beta over all labels where the labels are positive-only
        assert head.loss.get('balance_count', 'observed') == (
            'all' if setting == 'spl' else 'observed')
    else:
        assert hooks == []


@pytest.mark.parametrize('setting', ['pal60', 'ppl60'])
def test_table_vii_rows_switch_off_one_part_each(setting):
    method = load(f'resnet18_cocolike_{setting}_pseudo')
    for key, switch in (('ab', 'use_balance'), ('d', 'use_dynamic'),
                        ('p', 'use_penalty'), ('q', 'use_pick')):
        row = load(f'resnet18_cocolike_{setting}_pseudo_no_{key}')
        expected = method.model.head.loss.to_dict()
        expected[switch] = False
        assert row.model.head.loss.to_dict() == expected
        assert row.train_dataloader == method.train_dataloader
        assert row.custom_hooks == method.custom_hooks


@pytest.mark.parametrize('name,mode,keep', [
    ('pal30', 'pal', 0.3), ('pal60', 'pal', 0.6), ('pal90', 'pal', 0.9),
    ('ppl30', 'ppl', 0.3), ('ppl60', 'ppl', 0.6), ('ppl90', 'ppl', 0.9),
    ('spl', 'spl', None)
])
def test_coco_settings(name, mode, keep):
    cfg = load(f'resnet50_coco_{name}_pseudo')
    dataset = cfg.train_dataloader.dataset
    assert (dataset.mode, dataset.keep_ratio) == (mode, keep)
    assert dataset.dataset.ann_file == 'annotations/instances_train2014.json'
    assert cfg.val_dataloader.dataset.ann_file == \
        'annotations/instances_val2014.json'
    resize = [t for t in dataset.dataset.pipeline if t.type == 'Resize']
    assert resize[0].scale == (448, 448)
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert cfg.param_scheduler[0].type == 'OneCycleLR'
    assert cfg.model.head.loss.type == 'DynamicPartialLoss'
    assert cfg.model.head.loss.get('balance_count', 'observed') == (
        'observed' if mode == 'pal' else 'all')


def test_open_images_config_reads_the_official_layout(tmp_path):
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' /
     'oidv6-train-annotations-human-imagelabels.csv').write_text(
         'ImageID,Source,LabelName,Confidence\n'
         'aa01,verification,/m/0k4j,1\n'
         'aa01,verification,/m/0cmf2,0\n'
         'aa01,verification,/m/0zzzz,1\n'
         'bb02,crowdsource-verification,/m/0cmf2,1\n')
    (tmp_path / 'annotations' / 'class-descriptions-boxable.csv').write_text(
        '/m/0cmf2,Airplane\n/m/0k4j,Car\n/m/01g317,Person\n')
    for name in ('resnet50_openimages_bce', 'resnet50_openimages_pseudo'):
        cfg = load(name)
        dataset_cfg = cfg.train_dataloader.dataset
        dataset_cfg.data_root = str(tmp_path)
        dataset = DATASETS.build(dataset_cfg)
        np.testing.assert_array_equal(dataset.get_tristate_labels(),
                                      [[0, 1, -1], [1, -1, -1]])
        assert list(dataset.metainfo['display_names']) == [
            'Airplane', 'Car', 'Person'
        ]
        assert dataset.get_data_info(1)['img_path'] == osp.join(
            str(tmp_path), 'train', 'bb02.jpg')
    assert cfg.model.head.num_classes == 600
    assert cfg.model.head.loss.type == 'DynamicPartialLoss'
    assert [h.type for h in cfg.custom_hooks] == [
        'LabelStoreHook', 'PseudoLabelHook'
    ]


@pytest.mark.parametrize('setting', ['pal30', 'pal60', 'spl', 'ppl60'])
def test_ab_observed_variants_differ_by_balance_pseudo_only(setting):
    method = load(f'resnet18_cocolike_{setting}_pseudo')
    variant = load(f'resnet18_cocolike_{setting}_pseudo_ab_observed')
    expected = method.model.head.loss.to_dict()
    expected['balance_pseudo'] = False
    assert variant.model.head.loss.to_dict() == expected
    assert variant.train_dataloader == method.train_dataloader
