import json
import os.path as osp
import pickle
import sys

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from tool_runner import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import plot_per_class_ap  # noqa: E402


def write_predictions(path, seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random((50, 10)) < 0.3).astype(np.int8)
    labels[0] = 1
    scores = np.clip(labels * 0.3 + rng.random((50, 10)), 0, 1)
    samples = [
        dict(pred_score=torch.tensor(s, dtype=torch.float32),
             gt_tristate=torch.tensor(y)) for s, y in zip(scores, labels)
    ]
    with open(path, 'wb') as f:
        pickle.dump(samples, f)
    return scores, labels


def test_per_class_ap_matches_sklearn_and_plot_is_written(tmp_path):
    scores, labels = write_predictions(tmp_path / 'a.pkl', 0)
    write_predictions(tmp_path / 'b.pkl', 1)
    ap = plot_per_class_ap.per_class_ap(str(tmp_path / 'a.pkl'))
    expected = [100 * average_precision_score(labels[:, k], scores[:, k])
                for k in range(10)]
    np.testing.assert_allclose(ap, expected, rtol=1e-9)

    counts = tmp_path / 'counts.json'
    counts.write_text(json.dumps([1000, 599, 359, 215, 129, 77, 46, 28, 17,
                                  10]))
    out = plot_per_class_ap.main([
        str(tmp_path / 'a.pkl'), '--class-counts', str(counts),
        '--compare', str(tmp_path / 'b.pkl'), '--out',
        str(tmp_path / 'ap.png')
    ])
    assert osp.getsize(out) > 0


def test_groups_come_from_the_config_metric():
    counts, thresholds = plot_per_class_ap.config_class_counts(
        osp.join(REPO, 'configs/baseline/resnet18_digits_lt_bce.py'))
    assert thresholds == (20, 100)
    assert counts.tolist() == [1000, 599, 359, 215, 129, 77, 46, 28, 17, 10]
