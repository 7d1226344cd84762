"""The COCO baseline config trains an iteration and evaluates on a tiny
COCO-format dataset written by the test (real jpg files, real pipeline)."""
import json
import os.path as osp
import re
import sys

import cv2
import numpy as np

from tool_runner import REPO, run_tool


def write_tiny_coco(root, num_images=4):
    categories = [dict(id=i + 1, name=f'class{i}') for i in range(80)]
    images, annotations = [], []
    rng = np.random.default_rng(0)
    for split in ('train2017', 'val2017'):
        (root / split).mkdir(parents=True)
    for image_id in range(1, num_images + 1):
        name = f'{image_id:012d}.jpg'
        for split in ('train2017', 'val2017'):
            cv2.imwrite(str(root / split / name),
                        rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        images.append(dict(id=image_id, file_name=name, width=64, height=48))
        for cat in (image_id % 3 + 1, 40 + image_id):
            annotations.append(
                dict(id=len(annotations) + 1, image_id=image_id,
                     category_id=cat, bbox=[0, 0, 5, 5], area=25, iscrowd=0))
    (root / 'annotations').mkdir()
    for split in ('train2017', 'val2017'):
        with open(root / 'annotations' / f'instances_{split}.json', 'w') as f:
            json.dump(dict(images=images, annotations=annotations,
                           categories=categories), f)


def test_coco_baseline_config_runs_on_tiny_coco(tmp_path):
    root = tmp_path / 'coco'
    write_tiny_coco(root)
    base = osp.join(REPO, 'configs/baseline/resnet50_coco_bce.py')
    config = tmp_path / 'tiny_coco.py'
    config.write_text(f'''
_base_ = [{base!r}]
data_root = {str(root) + '/'!r}
model = dict(backbone=dict(init_cfg=None))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(train_dataset=dict(data_root=data_root))
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
''')
    log = run_tool([
        sys.executable, osp.join(REPO, 'tools/train.py'), str(config),
        '--work-dir', str(tmp_path / 'work')
    ], cwd=tmp_path)
    assert 'Epoch(train) [1][2/2]' in log
    assert re.search(r'Epoch\(val\) \[1\].*multi-label/mAP: \d+', log)
