"""BalanceMix end to end through tools/train.py: a run stopped after the
refinement of epoch 2 and resumed ends where the uninterrupted run ends
(model, refined labels, minority sampler), RandAugment views included."""
import os.path as osp
import sys

import torch

import mlimb_mm  # noqa: F401  (checkpoint allow-list for torch.load)
from tool_runner import REPO, run_tool

TRAIN = osp.join(REPO, 'tools/train.py')
BALANCEMIX = osp.join(REPO,
                      'configs/balancemix/resnet18_digits_lt_noisy_balancemix.py')


def write_config(directory):
    """The digits BalanceMix config on 64 noisy training images: B = 16
    random + 16 minority per step (4 steps an epoch), warm-up 1 epoch, the
    refinement pass with RandAugment views in one seeded worker."""
    text = f'''
_base_ = [{BALANCEMIX!r}]
model = dict(backbone=dict(init_cfg=None))  # no pre-trained backbone here
train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    sampler=dict(batch_size_per_half=16),
    dataset=dict(dataset=dict(indices=64,
                              pipeline=[dict(type='PackMultiLabelInputs')])))
val_dataloader = dict(batch_size=32, num_workers=0, persistent_workers=False,
                      dataset=dict(indices=64))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=3, val_interval=3)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0,
                        end=3)]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=5,
                                     save_best=None))
custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(_base_.refinement, warmup_epochs=1, pass_batch_size=32,
         pass_num_workers=1),
    dict(type='BalanceMixHook'),
]
'''
    path = osp.join(directory, 'small_balancemix.py')
    with open(path, 'w') as f:
        f.write(text)
    return path


def load(path):
    return torch.load(path, map_location='cpu')


def test_balance_mix_resume_continues_the_interrupted_run(tmp_path):
    config = write_config(str(tmp_path))
    straight = tmp_path / 'straight'
    log = run_tool([sys.executable, TRAIN, config, '--work-dir',
                    str(straight)], cwd=tmp_path)
    assert 'LabelRefinementHook: epoch 3: ' in log

    interrupted = tmp_path / 'interrupted'
    run_tool([
        sys.executable, TRAIN, config, '--work-dir', str(interrupted),
        '--cfg-options', 'train_cfg.max_epochs=2'
    ], cwd=tmp_path)
    log = run_tool([
        sys.executable, TRAIN, config, '--work-dir', str(interrupted),
        '--resume'
    ], cwd=tmp_path)
    assert 'resumed epoch: 2' in log
    assert 'LabelRefinementHook: epoch 3: ' in log

    expected = load(straight / 'epoch_3.pth')
    resumed = load(interrupted / 'epoch_3.pth')
    # the refined labels of the last refinement (from the resumed pass)
    for field in ('targets', 'weights'):
        torch.testing.assert_close(
            resumed['label_store']['fields'][field],
            expected['label_store']['fields'][field], msg=field)
    # the minority sampler's class confidences, Eq. (2)
    minority = resumed['balance_mix']['sampler']['minority']
    reference = expected['balance_mix']['sampler']['minority']
    for key in ('presence', 'absence'):
        torch.testing.assert_close(torch.as_tensor(minority[key]),
                                   torch.as_tensor(reference[key]), msg=key)
    assert len(resumed['label_refinement']['history']) == 3
    # and the model trained on them
    for name, value in expected['state_dict'].items():
        torch.testing.assert_close(resumed['state_dict'][name], value,
                                   msg=name)
    # the labels were refined at all: some label is not at weight 1
    assert (expected['label_store']['fields']['weights'] < 1).any()
    # the minority sampler's history for Figure 6, one row per epoch
    import glob
    import json
    (history_json, ) = glob.glob(str(straight / '*' / 'balancemix.json'))
    with open(history_json) as f:
        history = json.load(f)
    sampling = history['minority_sampling']
    assert sampling['epochs'] == [1, 2, 3]
    assert len(sampling['class_mass']) == 3
    assert len(sampling['classes']) == len(sampling['uniform_class_mass'])
    (refine_json, ) = glob.glob(str(straight / '*' /
                                    'label_refinement.json'))
    with open(refine_json) as f:
        history = json.load(f)
    assert [r['epoch'] for r in history['refinements']] == [1, 2, 3]
