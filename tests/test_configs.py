"""Every config parses, and every full config builds its model, which
computes a finite loss on a small batch in our label convention."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import DATA_SAMPLERS, DATASETS, MODELS, TRANSFORMS

import mlimb_mm  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ALL_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                               recursive=True))
FULL_CONFIGS = [c for c in ALL_CONFIGS if '_base_' not in c]


@pytest.mark.parametrize('path', ALL_CONFIGS,
                         ids=lambda p: osp.relpath(p, REPO))
def test_config_parses(path):
    cfg = Config.fromfile(path)
    assert cfg is not None


@pytest.mark.parametrize('path', FULL_CONFIGS,
                         ids=lambda p: osp.relpath(p, REPO))
def test_full_config_model_builds_and_trains_a_step(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports.imports == ['mlimb_mm']
    model_cfg = cfg.model
    model_cfg.backbone.pop('init_cfg', None)  # no download in tests
    model = MODELS.build(model_cfg)
    num_classes = model_cfg.head.num_classes
    # What ClassStatisticsHook does at the start of training.
    for module in model.modules():
        if hasattr(module, 'set_class_statistics'):
            module.set_class_statistics(
                np.arange(1, num_classes + 1) * 10, 20 * num_classes)
    pack = TRANSFORMS.build(dict(type='PackMultiLabelInputs'))
    samples = []
    # models that train branches on blocks of the batch (COMIC) need one
    # block per stream
    for idx in range(2 * getattr(model, 'num_streams', 1)):
        tristate = np.zeros(num_classes, np.int8)
        tristate[idx % (num_classes - 1)] = 1
        tristate[-1] = -1
        samples.append(
            pack(dict(img=np.zeros((64, 64, 3), np.uint8),
                      gt_tristate=tristate, sample_idx=idx)))
    batch = dict(
        inputs=[s['inputs'] for s in samples],
        data_samples=[s['data_samples'] for s in samples])
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v).all() for v in losses.values())


@pytest.mark.parametrize('path,least', [
    ('configs/plm/resnet18_cocolike_mlt_plm_bce.py', (3, 5)),
    ('configs/plm/resnet18_cocolike_mlt_undersample.py', (3, 5)),
    ('configs/plm/resnet50_coco_plm.py', (10, 20)),
])
def test_plm_configs_report_several_least_frequent_k(path, least):
    """MultiLabelPRFMetric takes one K: one instance per K, with distinct
    prefixes (MMEngine refuses duplicate result keys), beside the mAP."""
    cfg = Config.fromfile(osp.join(REPO, path))
    metrics = cfg.val_evaluator
    assert metrics[0]['type'] == 'LongTailMultiLabelMetric'
    prf = [m for m in metrics if m['type'] == 'MultiLabelPRFMetric']
    assert tuple(m['num_least_frequent'] for m in prf) == least
    prefixes = [m.get('prefix', 'multi-label') for m in prf]
    assert len(set(prefixes)) == len(prefixes)
    assert cfg.test_evaluator == cfg.val_evaluator


def training_iterations(path, datasets):
    """Iterations of a whole run of an embedded config: its sampler's
    epoch over its (built) training set, in batches, times the epochs."""
    cfg = Config.fromfile(osp.join(REPO, path))
    loader = cfg.train_dataloader
    key = repr(loader.dataset)
    if key not in datasets:
        datasets[key] = DATASETS.build(loader.dataset)
    sampler = DATA_SAMPLERS.build(
        dict(dict(seed=0, **loader.sampler), dataset=datasets[key]))
    return -(-len(sampler) // loader.batch_size) * cfg.train_cfg.max_epochs


@pytest.mark.parametrize('baseline,rows', [
    ('configs/comic/resnet18_cocolike_plt_bce.py',
     'configs/comic/resnet18_cocolike_plt_*.py'),
    ('configs/db_loss/resnet18_cocolike_mlt_bce.py',
     'configs/db_loss/resnet18_cocolike_mlt_*.py'),
    ('configs/plm/resnet18_cocolike_mlt_bce.py',
     'configs/plm/resnet18_cocolike_mlt_*.py'),
])
def test_rows_of_an_embedded_table_train_as_long_as_its_baseline(
        baseline, rows):
    """A re-sampling row (class-aware, undersampling, COMIC's three streams)
    sets its epoch length or epochs so that the run takes as many
    iterations as the table's BCE row, within 3%."""
    datasets = {}
    expected = training_iterations(baseline, datasets)
    for path in sorted(glob.glob(osp.join(REPO, rows))):
        got = training_iterations(osp.relpath(path, REPO), datasets)
        assert abs(got - expected) <= 0.03 * expected, (path, got, expected)
