"""A COMIC run (three branches on COMICSampler's streams, the label
corrector, the moving vectors) stopped and resumed with tools/train.py
continues exactly where it stopped."""
import sys

import torch

import mlimb_mm  # noqa: F401  (checkpoint allow-list for torch.load)
from tool_runner import REPO, run_tool, write_small_config

TRAIN = f'{REPO}/tools/train.py'
COMIC = '''
model = dict(
    _delete_=True,
    type='COMICClassifier',
    backbone_mode='shared',
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=16,
                  base_channels=16, num_stages=4, strides=(2, 2, 2, 2),
                  out_indices=(3, ), style='pytorch'),
    projection=dict(in_channels=128, out_channels=64),
    branch_streams=dict(balanced=0, head=1, tail=2),
    head=dict(type='COMICHead', num_classes=10, in_channels=64,
              attention=dict(dropout=0.),
              loss=dict(type='ReflectiveLabelCorrectionLoss', tau=0.5,
                        correct_negatives=True,
                        loss=dict(type='MultiFocalModifierLoss'))),
    data_preprocessor=_base_.data_preprocessor)
train_dataloader = dict(
    batch_size=48, num_workers=0, persistent_workers=False,
    dataset=dict(indices=64, pipeline=[dict(type='PackMultiLabelInputs')]),
    sampler=dict(_delete_=True, type='COMICSampler',
                 batch_size_per_stream=16))
optim_wrapper = dict(optimizer=dict(lr=0.01))
custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(type='ClassStatisticsHook'),
    dict(type='ReflectiveLabelCorrectionHook'),
    dict(type='MovingGradientHook'),
]
'''


def load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def test_comic_resume_continues_the_interrupted_run(tmp_path):
    config = write_small_config(str(tmp_path), max_epochs=3,
                                deterministic=True, extra=COMIC)
    straight = tmp_path / 'straight'
    log = run_tool([sys.executable, TRAIN, config, '--work-dir',
                    str(straight)], cwd=tmp_path)
    assert 'ReflectiveLabelCorrectionHook: epoch 3' in log
    interrupted = tmp_path / 'interrupted'
    run_tool([sys.executable, TRAIN, config, '--work-dir', str(interrupted),
              '--cfg-options', 'train_cfg.max_epochs=2'], cwd=tmp_path)
    log = run_tool([sys.executable, TRAIN, config, '--work-dir',
                    str(interrupted), '--resume'], cwd=tmp_path)
    assert 'resumed epoch: 2' in log

    expected = load(straight / 'epoch_3.pth')
    resumed = load(interrupted / 'epoch_3.pth')
    assert resumed['meta']['iter'] == expected['meta']['iter'] == 12
    assert resumed['moving_gradient']['steps'] == 12
    for name, value in expected['state_dict'].items():
        torch.testing.assert_close(resumed['state_dict'][name], value,
                                   rtol=0, atol=0, msg=name)
    assert expected['state_dict']['head.moving_vectors'].abs().sum() > 0
    torch.testing.assert_close(resumed['moving_gradient']['vectors'],
                               expected['moving_gradient']['vectors'],
                               rtol=0, atol=0)
    fields = expected['label_store']['fields']
    assert torch.equal(resumed['label_store']['fields']['rlc_corrected_epoch'],
                       fields['rlc_corrected_epoch'])
    assert resumed['label_correction']['history'] == \
        expected['label_correction']['history']
    assert len(expected['label_correction']['history']) == 3
