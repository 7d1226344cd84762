"""tools/dist_train.sh with two CPU processes (gloo) trains and evaluates."""
import os.path as osp
import re
import socket

import torch

import mlimb_mm  # noqa: F401
from tool_runner import REPO, run_tool, write_small_config


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_dist_train_two_cpu_processes(tmp_path):
    config = write_small_config(str(tmp_path), max_epochs=2, num_workers=1)
    work_dir = tmp_path / 'work'
    log = run_tool([
        'bash', osp.join(REPO, 'tools/dist_train.sh'), config, '2',
        '--work-dir', str(work_dir)
    ], cwd=tmp_path, env_extra={'PORT': str(free_port())})
    assert 'Distributed launcher: pytorch' in log
    # MMEngine calls the world size "GPU number", even for CPU processes.
    assert 'GPU number: 2' in log
    assert 'device_ids=None' in log
    # 64 images, batch 32 per process: one iteration per epoch and rank.
    assert 'Epoch(train) [2][1/1]' in log
    assert re.search(r'Epoch\(val\) \[2\].*multi-label/mAP: \d+', log)
    checkpoint = torch.load(work_dir / 'epoch_2.pth', map_location='cpu')
    assert checkpoint['meta']['iter'] == 2
