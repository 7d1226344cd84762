import json

import numpy as np
import pytest
import torch
from mmpretrain.evaluation import VOCAveragePrecision
from mmpretrain.registry import DATASETS, METRICS
from mmpretrain.structures import DataSample
from sklearn.metrics import average_precision_score

from mlimb_mm.evaluation.metrics import (LongTailMultiLabelMetric,
                                         average_precision, long_tail_groups)

from metric_samples import run_metric, to_samples


def sk_ap(scores, tristate):
    """sklearn AP per class on the known labels (NaN without a positive)."""
    out = []
    for k in range(scores.shape[1]):
        known = tristate[:, k] >= 0
        y = tristate[known, k]
        if not (y == 1).any():
            out.append(np.nan)
            continue
        out.append(average_precision_score(y, scores[known, k]))
    return np.array(out)


def random_data(n=300, k=12, decimals=1, unknown=0.0, seed=0):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random((n, k)), decimals).astype(np.float32)
    # Positives correlate with the scores so that APs are spread out.
    tristate = (rng.random((n, k)) < 0.15 + 0.5 * scores).astype(np.int8)
    if unknown:
        tristate[rng.random((n, k)) < unknown] = -1
    return scores, tristate




# --------------------------------------------------------------------------
# average_precision


@pytest.mark.parametrize('decimals', [1, 2, 6])
def test_average_precision_matches_sklearn_with_ties(decimals):
    scores, tristate = random_data(decimals=decimals, seed=decimals)
    ap = average_precision(scores, tristate)
    ref = sk_ap(scores, tristate)
    assert not np.isnan(ref).any()
    np.testing.assert_allclose(ap, ref, rtol=0, atol=1e-12)
    assert ap.mean() == pytest.approx(ref.mean(), abs=1e-12)
    # torch input gives the same
    np.testing.assert_allclose(
        average_precision(torch.from_numpy(scores), torch.from_numpy(
            tristate)), ref, rtol=0, atol=1e-12)


def test_average_precision_ties_hand_computed():
    # A tie of a positive and a negative counts as one threshold: P = 1/2.
    assert average_precision(np.array([0.5, 0.5]), np.array([1, 0])) == \
        pytest.approx(0.5)
    assert average_precision(np.array([0.5, 0.5]), np.array([0, 1])) == \
        pytest.approx(0.5)
    # 0.9 -> P=1, R=1/2; {0.8, 0.8} -> P=2/3, R=1: AP = 1/2 + 1/2 * 2/3.
    scores = np.array([0.9, 0.8, 0.8, 0.1])
    assert average_precision(scores, np.array([1, 0, 1, 0])) == \
        pytest.approx(0.5 + 1 / 3)
    assert average_precision(scores, np.array([1, 1, 0, 0])) == \
        pytest.approx(0.5 + 1 / 3)


def test_average_precision_ignores_unknown():
    scores, tristate = random_data(n=400, unknown=0.3, seed=3)
    ap = average_precision(scores, tristate)
    np.testing.assert_allclose(ap, sk_ap(scores, tristate), rtol=0,
                               atol=1e-12)
    # Unknown labels do not count as negatives: the AP differs from the one
    # with unknowns as negatives.
    as_negative = np.where(tristate < 0, 0, tristate)
    assert not np.allclose(ap, average_precision(scores, as_negative))
    # Whatever the score of an unknown label, the AP is the same.
    rng = np.random.default_rng(1)
    moved = np.where(tristate < 0, rng.random(scores.shape), scores)
    np.testing.assert_allclose(
        average_precision(moved, tristate), ap, rtol=0, atol=1e-12)
    # Unknowns at the very top of the ranking do not count either.
    top = np.where(tristate < 0, 2.0, scores)
    np.testing.assert_allclose(
        average_precision(top, tristate), ap, rtol=0, atol=1e-12)


def test_average_precision_no_positive_is_nan():
    scores = np.array([[0.9, 0.2, 0.3], [0.1, 0.8, 0.4], [0.5, 0.5, 0.6]])
    tristate = np.array([[1, 0, -1], [0, 0, 0], [0, -1, -1]])
    ap = average_precision(scores, tristate)
    assert ap[0] == pytest.approx(1.0)
    assert np.isnan(ap[1]) and np.isnan(ap[2])


def test_average_precision_chunks_agree():
    scores, tristate = random_data(n=200, k=17, unknown=0.2, seed=5)
    full = average_precision(scores, tristate)
    for chunk in (1, 200, 201, 1000, 3399):
        np.testing.assert_allclose(
            average_precision(scores, tristate, max_chunk_elements=chunk),
            full, rtol=0, atol=1e-12)


def test_average_precision_rejects_nan():
    with pytest.raises(ValueError):
        average_precision(np.array([[np.nan], [0.1]]), np.array([[1], [0]]))


# --------------------------------------------------------------------------
# long_tail_groups


def test_long_tail_groups_boundaries():
    counts = [19, 20, 100, 101, 0, 5000]
    groups = long_tail_groups(counts, (20, 100))
    assert groups['many'].tolist() == [3, 5]
    assert groups['medium'].tolist() == [1, 2]
    assert groups['few'].tolist() == [0, 4]
    groups = long_tail_groups([999, 1000, 10000, 10001], (1000, 10000))
    assert groups['many'].tolist() == [3]
    assert groups['medium'].tolist() == [1, 2]
    assert groups['few'].tolist() == [0]
    with pytest.raises(ValueError):
        long_tail_groups(counts, (100, 20))


# --------------------------------------------------------------------------
# LongTailMultiLabelMetric

COUNTS = [500, 101, 100, 60, 20, 19, 3, 0]  # many 0-1, medium 2-4, few 5-7


def test_metric_groups_through_evaluate():
    scores, tristate = random_data(n=250, k=8, unknown=0.1, seed=7)
    ref = sk_ap(scores, tristate) * 100
    metric = METRICS.build(
        dict(type='LongTailMultiLabelMetric', class_counts=COUNTS))
    res = run_metric(metric, to_samples(scores, tristate), batch=7)
    assert set(res) == {
        'multi-label/mAP', 'multi-label/mAP_many', 'multi-label/mAP_medium',
        'multi-label/mAP_few'
    }
    assert res['multi-label/mAP'] == pytest.approx(ref.mean(), abs=1e-9)
    assert res['multi-label/mAP_many'] == pytest.approx(
        ref[[0, 1]].mean(), abs=1e-9)
    assert res['multi-label/mAP_medium'] == pytest.approx(
        ref[[2, 3, 4]].mean(), abs=1e-9)
    assert res['multi-label/mAP_few'] == pytest.approx(
        ref[[5, 6, 7]].mean(), abs=1e-9)


def test_metric_without_counts_only_map_and_classwise():
    scores, tristate = random_data(n=100, k=5, seed=8)
    metric = LongTailMultiLabelMetric(classwise=True, prefix='lt')
    res = run_metric(metric, to_samples(scores, tristate), batch=7)
    assert set(res) == {'lt/mAP', 'lt/AP_classwise'}
    ref = sk_ap(scores, tristate) * 100
    np.testing.assert_allclose(res['lt/AP_classwise'], ref, atol=1e-9)
    assert res['lt/mAP'] == pytest.approx(ref.mean(), abs=1e-9)


def test_metric_class_without_positive_excluded(warnings_log):
    scores, tristate = random_data(n=120, k=8, unknown=0.1, seed=9)
    tristate[:, 6] = np.where(tristate[:, 6] == 1, -1, tristate[:, 6])
    ref = sk_ap(scores, tristate) * 100
    assert np.isnan(ref[6]) and not np.isnan(np.delete(ref, 6)).any()
    metric = LongTailMultiLabelMetric(class_counts=COUNTS, classwise=True)
    metric.dataset_meta = dict(classes=[f'c{i}' for i in range(8)])
    res = run_metric(metric, to_samples(scores, tristate), batch=7)
    assert res['multi-label/mAP'] == pytest.approx(
        np.nanmean(ref), abs=1e-9)
    assert res['multi-label/mAP_few'] == pytest.approx(
        ref[[5, 7]].mean(), abs=1e-9)
    assert np.isnan(res['multi-label/AP_classwise'][6])
    assert any('6 (c6)' in m for m in warnings_log)


def test_metric_empty_group_has_no_key(warnings_log):
    scores, tristate = random_data(n=80, k=4, seed=10)
    metric = LongTailMultiLabelMetric(class_counts=[500, 300, 50, 30])
    samples = to_samples(scores, tristate)
    res = run_metric(metric, samples, batch=7)
    assert 'multi-label/mAP_few' not in res
    assert 'multi-label/mAP_many' in res and 'multi-label/mAP_medium' in res
    assert all(not np.isnan(v) for v in res.values())
    n_warn = sum('few-shot' in m for m in warnings_log)
    assert n_warn == 1
    run_metric(metric, samples, batch=7)  # warned once only
    assert sum('few-shot' in m for m in warnings_log) == 1


def test_metric_voc_style_samples():
    rng = np.random.default_rng(11)
    n, k = 60, 5
    scores = rng.random((n, k)).astype(np.float32)  # no ties
    samples, tristate = [], np.zeros((n, k), np.int8)
    for i in range(n):
        pos = np.flatnonzero(rng.random(k) < 0.4)
        pos = pos if len(pos) else np.array([i % k])
        # difficult labels; those also in gt_label stay positive
        difficult = np.flatnonzero(rng.random(k) < 0.2).tolist()
        tristate[i, pos] = 1
        tristate[i, [d for d in difficult if d not in pos]] = -1
        sample = DataSample().set_gt_label(torch.as_tensor(pos))
        sample.set_field(
            difficult, 'gt_label_difficult', field_type='metainfo')
        samples.append(
            sample.set_pred_score(torch.from_numpy(scores[i])).to_dict())
    res = run_metric(LongTailMultiLabelMetric(), samples, batch=7)
    ref = sk_ap(scores, tristate) * 100
    assert res['multi-label/mAP'] == pytest.approx(ref.mean(), abs=1e-9)
    # Without ties, mmpretrain's VOC AP (difficult ignored) agrees.
    voc = run_metric(VOCAveragePrecision(), samples, batch=7)
    assert res['multi-label/mAP'] == pytest.approx(
        voc['multi-label/mAP'], abs=1e-3)


@pytest.mark.parametrize('as_dict', [False, True])
def test_metric_class_counts_file(tmp_path, as_dict):
    path = tmp_path / 'counts.json'
    path.write_text(
        json.dumps(dict(class_counts=COUNTS) if as_dict else COUNTS))
    scores, tristate = random_data(n=150, k=8, seed=12)
    res = run_metric(
        LongTailMultiLabelMetric(class_counts_file=str(path)),
        to_samples(scores, tristate), batch=7)
    ref = sk_ap(scores, tristate) * 100
    assert res['multi-label/mAP_medium'] == pytest.approx(
        ref[[2, 3, 4]].mean(), abs=1e-9)


def test_metric_class_counts_file_not_json(tmp_path):
    path = tmp_path / 'counts.json'
    path.write_text('[1, 2,')
    with pytest.raises(ValueError, match=r"class_counts_file '.*counts\.json' "
                       'is not valid JSON'):
        LongTailMultiLabelMetric(class_counts_file=str(path))


class _CountsDataset:
    """Dataset with get_class_counts; counts its constructions."""
    built = 0

    def __init__(self, counts):
        type(self).built += 1
        self.counts = counts

    def get_class_counts(self):
        return np.asarray(self.counts)


class _CatIdsDataset:
    """Dataset with get_cat_ids only."""
    metainfo = dict(classes=[f'c{i}' for i in range(8)])

    def __init__(self, counts):
        self.cat_ids = [[] for _ in range(max(counts))]
        for k, c in enumerate(counts):
            for i in range(c):
                self.cat_ids[i].append(k)

    def __len__(self):
        return len(self.cat_ids)

    def get_cat_ids(self, idx):
        return self.cat_ids[idx]


DATASETS.register_module(
    name='_TestLTMapCountsDataset', module=_CountsDataset, force=True)
DATASETS.register_module(
    name='_TestLTMapCatIdsDataset', module=_CatIdsDataset, force=True)


@pytest.mark.parametrize(
    'ds_type', ['_TestLTMapCountsDataset', '_TestLTMapCatIdsDataset'])
def test_metric_train_dataset(ds_type):
    _CountsDataset.built = 0
    metric = LongTailMultiLabelMetric(
        train_dataset=dict(type=ds_type, counts=COUNTS))
    assert _CountsDataset.built == 0  # built lazily
    scores, tristate = random_data(n=150, k=8, seed=13)
    samples = to_samples(scores, tristate)
    res = run_metric(metric, samples, batch=7)
    ref = sk_ap(scores, tristate) * 100
    assert res['multi-label/mAP_many'] == pytest.approx(
        ref[[0, 1]].mean(), abs=1e-9)
    assert res['multi-label/mAP_few'] == pytest.approx(
        ref[[5, 6, 7]].mean(), abs=1e-9)
    run_metric(metric, samples, batch=7)
    assert _CountsDataset.built == (ds_type == '_TestLTMapCountsDataset')


def test_metric_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        LongTailMultiLabelMetric(class_counts=COUNTS, train_dataset=dict())
    with pytest.raises(ValueError):
        LongTailMultiLabelMetric(group_thresholds=(100, 20))
    metric = LongTailMultiLabelMetric(class_counts=COUNTS[:5])
    scores, tristate = random_data(n=30, k=8, seed=14)
    with pytest.raises(ValueError):
        run_metric(metric, to_samples(scores, tristate), batch=7)
