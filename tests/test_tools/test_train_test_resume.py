"""End-to-end runs of tools/train.py and tools/test.py on the embedded
digits, and a resume that continues exactly where the run stopped."""
import os.path as osp
import re
import sys

import torch

import mlimb_mm  # noqa: F401  (checkpoint allow-list for torch.load)
from tool_runner import REPO, run_tool, write_small_config

TRAIN = osp.join(REPO, 'tools/train.py')
TEST = osp.join(REPO, 'tools/test.py')


def test_train_then_test_reports_long_tail_map(tmp_path):
    config = write_small_config(str(tmp_path), max_epochs=1, num_workers=1)
    work_dir = tmp_path / 'work'
    log = run_tool([sys.executable, TRAIN, config, '--work-dir', str(work_dir)],
                   cwd=tmp_path)
    assert 'Epoch(train) [1][2/2]' in log
    for key in ('mAP', 'mAP_many', 'mAP_medium', 'mAP_few', 'f1_least'):
        assert re.search(rf'multi-label/{key}: \d+\.\d+', log), key

    checkpoint = work_dir / 'epoch_1.pth'
    out = tmp_path / 'preds.pkl'
    log = run_tool([
        sys.executable, TEST, config, str(checkpoint), '--work-dir',
        str(tmp_path / 'test'), '--out', str(out)
    ], cwd=tmp_path)
    assert re.search(r'Epoch\(test\).*multi-label/mAP: \d+', log)
    import pickle
    with open(out, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 64
    assert predictions[0]['pred_score'].shape == (10, )
    assert predictions[0]['gt_tristate'].shape == (10, )


def load_state(path):
    return torch.load(path, map_location='cpu')


def test_resume_continues_the_interrupted_run(tmp_path):
    config = write_small_config(
        str(tmp_path), max_epochs=3, deterministic=True,
        extra="custom_hooks = [dict(type='LabelStoreHook', "
        "fields=dict(weights=dict(dtype='float16')))]\n")
    straight = tmp_path / 'straight'
    run_tool([sys.executable, TRAIN, config, '--work-dir', str(straight)],
             cwd=tmp_path)

    # The same run, stopped after 2 of its 3 epochs ...
    interrupted = tmp_path / 'interrupted'
    run_tool([
        sys.executable, TRAIN, config, '--work-dir', str(interrupted),
        '--cfg-options', 'train_cfg.max_epochs=2'
    ], cwd=tmp_path)
    assert not (interrupted / 'epoch_3.pth').exists()
    # ... then resumed from its latest checkpoint with the full schedule.
    log = run_tool(
        [sys.executable, TRAIN, config, '--work-dir', str(interrupted), '--resume'],
        cwd=tmp_path)
    assert 'resumed epoch: 2' in log
    assert 'Epoch(train) [1]' not in log and 'Epoch(train) [3]' in log

    expected = load_state(straight / 'epoch_3.pth')
    resumed = load_state(interrupted / 'epoch_3.pth')
    assert resumed['meta']['epoch'] == 3 and resumed['meta']['iter'] == 6
    assert resumed['label_store']['num_samples'] == 64
    for name, value in expected['state_dict'].items():
        torch.testing.assert_close(
            resumed['state_dict'][name], value, msg=name)
