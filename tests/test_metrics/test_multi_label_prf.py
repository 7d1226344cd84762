import json

import numpy as np
import pytest
import torch
from mmpretrain.registry import DATASETS, METRICS
from mmpretrain.structures import DataSample
from sklearn.metrics import precision_recall_fscore_support

from mlimb_mm.evaluation.metrics import (MultiLabelPRFMetric, exact_match,
                                         precision_recall_f1)

from metric_samples import run_metric, to_samples


def random_data(n=200, k=8, unknown=0.0, seed=0):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random((n, k)), 2).astype(np.float32)
    tristate = (rng.random((n, k)) < 0.1 + 0.6 * scores).astype(np.int8)
    if unknown:
        tristate[rng.random((n, k)) < unknown] = -1
    return scores, tristate


def sk_prf(scores, tristate, thr=0.5):
    """sklearn P/R/F1 per class on the known labels of each class."""
    out = np.zeros((3, scores.shape[1]))
    for k in range(scores.shape[1]):
        known = tristate[:, k] >= 0
        p, r, f, _ = precision_recall_fscore_support(
            tristate[known, k], (scores[known, k] >= thr).astype(int),
            average=None, labels=[1], zero_division=0)
        out[:, k] = p[0], r[0], f[0]
    return out




def test_prf_matches_sklearn_fully_known():
    scores, tristate = random_data(seed=1)
    # a class never predicted positive: precision 0 (zero_division=0)
    scores[:, 3] = 0.1
    res = precision_recall_f1(scores, tristate)
    p, r, f, support = precision_recall_fscore_support(
        tristate, (scores >= 0.5).astype(int), average=None, zero_division=0)
    np.testing.assert_allclose(res['precision'], p, atol=1e-12)
    np.testing.assert_allclose(res['recall'], r, atol=1e-12)
    np.testing.assert_allclose(res['f1'], f, atol=1e-12)
    np.testing.assert_array_equal(res['support'], support)
    assert res['precision'][3] == 0 and res['f1'][3] == 0


def test_prf_threshold_is_inclusive():
    scores = np.array([[0.5], [0.49]])
    res = precision_recall_f1(scores, np.array([[1], [1]]))
    assert res['recall'][0] == pytest.approx(0.5)
    res = precision_recall_f1(scores, np.array([[1], [1]]), thr=0.4)
    assert res['recall'][0] == pytest.approx(1.0)


def test_prf_ignores_unknown():
    scores, tristate = random_data(unknown=0.3, seed=2)
    res = precision_recall_f1(scores, tristate)
    ref = sk_prf(scores, tristate)
    np.testing.assert_allclose(res['precision'], ref[0], atol=1e-12)
    np.testing.assert_allclose(res['recall'], ref[1], atol=1e-12)
    np.testing.assert_allclose(res['f1'], ref[2], atol=1e-12)
    as_negative = np.where(tristate < 0, 0, tristate)
    assert not np.allclose(
        precision_recall_f1(scores, as_negative)['precision'],
        res['precision'])


def test_exact_match_by_hand():
    scores = np.array([
        [0.9, 0.1, 0.2],  # right
        [0.9, 0.9, 0.2],  # wrong on class 1
        [0.1, 0.9, 0.8],  # class 2 unknown, rest right
        [0.6, 0.6, 0.6],  # all unknown: left out
        [0.2, 0.2, 0.2],  # misses the positive class 0
    ])
    tristate = np.array([
        [1, 0, 0],
        [1, 0, 0],
        [0, 1, -1],
        [-1, -1, -1],
        [1, 0, 0],
    ])
    assert exact_match(scores, tristate) == pytest.approx(2 / 4)
    assert exact_match(scores, tristate, thr=0.15) == pytest.approx(1 / 4)


COUNTS = [500, 7, 300, 2, 40, 7, 90, 1000]  # least frequent: 3, 1, 5


def test_metric_through_evaluate():
    scores, tristate = random_data(n=240, unknown=0.1, seed=3)
    ref = sk_prf(scores, tristate) * 100
    metric = METRICS.build(
        dict(type='MultiLabelPRFMetric', class_counts=COUNTS, classwise=True))
    res = run_metric(metric, to_samples(scores, tristate), batch=9)
    names = ('precision', 'recall', 'f1')
    for i, name in enumerate(names):
        assert res[f'multi-label/{name}'] == pytest.approx(
            ref[i].mean(), abs=1e-9)
        assert res[f'multi-label/{name}_least'] == pytest.approx(
            ref[i, [3, 1, 5]].mean(), abs=1e-9)
        np.testing.assert_allclose(res[f'multi-label/{name}_classwise'],
                                   ref[i], atol=1e-9)
    known = tristate >= 0
    correct = (((scores >= 0.5) == (tristate == 1)) | ~known).all(1)
    assert res['multi-label/exact_match'] == pytest.approx(
        correct[known.any(1)].mean() * 100)


def test_metric_num_least_and_thr():
    scores, tristate = random_data(n=150, seed=4)
    metric = MultiLabelPRFMetric(
        thr=0.3, num_least_frequent=1, class_counts=COUNTS, prefix='plm')
    res = run_metric(metric, to_samples(scores, tristate), batch=9)
    ref = sk_prf(scores, tristate, thr=0.3) * 100
    assert res['plm/f1_least'] == pytest.approx(ref[2, 3], abs=1e-9)
    assert res['plm/precision'] == pytest.approx(ref[0].mean(), abs=1e-9)


def test_metric_without_counts():
    scores, tristate = random_data(n=50, seed=5)
    res = run_metric(MultiLabelPRFMetric(), to_samples(scores, tristate),
                     batch=9)
    assert set(res) == {
        'multi-label/precision', 'multi-label/recall', 'multi-label/f1',
        'multi-label/exact_match'
    }


def test_metric_class_without_positive_excluded(warnings_log):
    scores, tristate = random_data(n=120, unknown=0.1, seed=6)
    tristate[:, 3] = np.where(tristate[:, 3] == 1, 0, tristate[:, 3])
    ref = sk_prf(scores, tristate) * 100
    metric = MultiLabelPRFMetric(class_counts=COUNTS)
    metric.dataset_meta = dict(classes=[f'c{i}' for i in range(8)])
    res = run_metric(metric, to_samples(scores, tristate), batch=9)
    keep = [0, 1, 2, 4, 5, 6, 7]
    assert res['multi-label/precision'] == pytest.approx(
        ref[0, keep].mean(), abs=1e-9)
    assert res['multi-label/recall_least'] == pytest.approx(
        ref[1, [1, 5]].mean(), abs=1e-9)
    assert any('3 (c3)' in m for m in warnings_log)


def test_metric_voc_style_samples():
    scores = np.array([[0.9, 0.2, 0.7], [0.3, 0.6, 0.1]], np.float32)
    samples = []
    for s, labels, difficult in zip(scores, ([0], [1, 2]), ([2], [2])):
        sample = DataSample().set_gt_label(torch.as_tensor(labels))
        sample.set_field(
            difficult, 'gt_label_difficult', field_type='metainfo')
        samples.append(sample.set_pred_score(torch.from_numpy(s)).to_dict())
    res = run_metric(MultiLabelPRFMetric(classwise=True), samples, batch=9)
    # class 2: sample 0 difficult (ignored), sample 1 positive & difficult
    # (stays positive) but predicted negative.
    assert res['multi-label/precision_classwise'] == [100.0, 100.0, 0.0]
    assert res['multi-label/recall_classwise'] == [100.0, 100.0, 0.0]
    assert res['multi-label/exact_match'] == pytest.approx(50.0)


class _PRFCountsDataset:

    def __init__(self, counts):
        self.counts = counts

    def get_class_counts(self):
        return self.counts


DATASETS.register_module(
    name='_TestPRFCountsDataset', module=_PRFCountsDataset, force=True)


@pytest.mark.parametrize('source', ['file', 'dataset'])
def test_metric_count_sources(tmp_path, source):
    if source == 'file':
        path = tmp_path / 'counts.json'
        path.write_text(json.dumps(dict(class_counts=COUNTS)))
        metric = MultiLabelPRFMetric(class_counts_file=str(path))
    else:
        metric = MultiLabelPRFMetric(
            train_dataset=dict(type='_TestPRFCountsDataset', counts=COUNTS))
    scores, tristate = random_data(n=100, seed=7)
    res = run_metric(metric, to_samples(scores, tristate), batch=9)
    ref = sk_prf(scores, tristate) * 100
    assert res['multi-label/recall_least'] == pytest.approx(
        ref[1, [3, 1, 5]].mean(), abs=1e-9)


def test_metric_bad_arguments(tmp_path):
    path = tmp_path / 'counts.json'
    path.write_text(json.dumps(COUNTS))
    with pytest.raises(ValueError):
        MultiLabelPRFMetric(class_counts=COUNTS, class_counts_file=str(path))
    with pytest.raises(ValueError):
        MultiLabelPRFMetric(num_least_frequent=0)
    with pytest.raises(ValueError):
        MultiLabelPRFMetric(class_counts=[1, -2, 3])
