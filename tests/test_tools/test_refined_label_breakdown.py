import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

from script_loader import REPO, load_script

# the tool takes its table cells from its sibling pseudo_label_quality.py,
# as when it runs from tools/analysis_tools
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
tool = load_script('tools/analysis_tools/refined_label_breakdown.py')


def _case():
    """Two classes, four images: every kind of label, hand-counted."""
    observed = np.array([[1, 0], [1, 0], [0, 1], [0, -1]], np.int8)
    clean = np.array([[1, 0], [0, 1], [0, 1], [1, 1]], np.int8)
    targets = np.array([[1, 0], [0, 0], [0, 1], [0, 0]], np.float32)
    weights = np.array([[1, 1], [1, 0.2], [0.01, 1], [1, 1]], np.float32)
    return observed, clean, targets, weights


def test_breakdown_counts_each_kind_of_label_by_hand():
    groups = dict(all=np.arange(2), first=np.array([0]))
    table = tool.breakdown(*_case(), groups)
    # class 0: true positive (0, kept as 1), wrong positive (1, set to 0),
    # true negative (2, down-weighted), hidden positive (3, trained as 0)
    first = table['first']
    assert first['true positive'] == dict(count=1, as_1=1., as_0=0.,
                                          down_weighted=0.)
    assert first['wrong positive'] == dict(count=1, as_1=0., as_0=1.,
                                           down_weighted=0.)
    assert first['hidden positive'] == dict(count=1, as_1=0., as_0=1.,
                                            down_weighted=0.)
    assert first['true negative'] == dict(count=1, as_1=0., as_0=0.,
                                          down_weighted=1.)
    # all: class 1 adds a true negative (0, as 0), a hidden positive
    # (1, down-weighted), a true positive (2, as 1); image 3's -1 is no kind
    assert table['all']['hidden positive'] == dict(
        count=2, as_1=0., as_0=.5, down_weighted=.5)
    assert table['all']['true positive']['count'] == 2
    assert table['all']['true negative']['count'] == 2
    # trained positives: (0, 0) and (2, 1), both right, of 5 clean ones
    # (the unknown (3, 1) included); observed: 3 positives, 2 right
    assert table['all']['positives'] == dict(
        recall=.4, precision=1., observed_recall=.4,
        observed_precision=pytest.approx(2 / 3))


def test_an_empty_kind_has_no_share():
    groups = dict(second=np.array([1]))
    table = tool.breakdown(*_case(), groups)
    assert table['second']['wrong positive'] == dict(
        count=0, as_1=None, as_0=None, down_weighted=None)


def test_tables_give_mean_and_std_over_runs(monkeypatch, capsys):
    observed, clean, targets, weights = _case()
    other = targets.copy()
    other[0, 0] = 0  # run 2 sets the first true positive to 0
    runs = {'a': (observed, clean, targets, weights, [1, 1]),
            'b': (observed, clean, other, weights, [1, 1])}
    monkeypatch.setattr(tool, 'load_run',
                        lambda work_dir, ckpt: runs[work_dir])
    tool.main(['a', 'b'])
    out = capsys.readouterr().out
    # class counts (clean positives) 2 and 3 with thresholds (1, 1): both
    # classes are many-shot
    assert '| many | true positive | 2 | 0.750 ± 0.250 | 0.250 ± 0.250 |' \
        in out
    assert '| medium | true positive | 0 | - | - | - |' in out


def test_load_run_reads_the_store_against_the_kept_clean_labels(tmp_path):
    dataset = dict(
        type='NoisyLabelDataset', noise_type='flip', rho=0.3, seed=0,
        dataset=dict(type='CocoLikeDigits', num_train_images=60))
    Config(dict(default_scope='mmpretrain', train_dataloader=dict(
        dataset=dataset))).dump(str(tmp_path / 'run.py'))
    from mmpretrain.registry import DATASETS
    from mlimb_mm.datasets.wrappers.base_label_wrapper import (
        dataset_clean_labels, dataset_tristate_labels)
    built = DATASETS.build(dataset)
    clean = torch.as_tensor(dataset_clean_labels(built), dtype=torch.float16)
    torch.save(dict(label_store=dict(fields=dict(
        targets=clean, weights=torch.ones_like(clean)))),
        tmp_path / 'epoch_2.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    observed, kept, targets, weights, thresholds = tool.load_run(
        str(tmp_path))
    assert np.array_equal(observed, dataset_tristate_labels(built))
    assert (observed != kept).any()  # the flips are there
    assert np.array_equal(targets, kept)
    assert thresholds is None
    table = tool.breakdown(observed, kept, targets, weights,
                           dict(all=np.arange(observed.shape[1])))
    assert table['all']['positives']['precision'] == 1.
    assert table['all']['positives']['recall'] == 1.


def test_load_run_names_the_work_dir_without_a_config(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        tool.load_run(str(tmp_path))
