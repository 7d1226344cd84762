"""LabelRefinementHook and BalanceMixHook on two gloo ranks: the refinement
pass is sharded, its per-label results are summed over the ranks, and both
ranks end with the same GMM posteriors, refined labels and minority-sampler
probabilities -- those of one process running the whole pass."""
import copy
import os.path as osp
from types import SimpleNamespace

import torch
from dist_utils import run_distributed
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO,
                  'configs/balancemix/resnet18_digits_lt_noisy_balancemix.py')


def small_cfg():
    cfg = Config.fromfile(CONFIG)
    loader = cfg.train_dataloader
    loader.batch_size = 32
    loader.num_workers = 0
    loader.persistent_workers = False
    loader.sampler.batch_size_per_half = 16
    loader.dataset.dataset.indices = 48
    loader.dataset.dataset.pipeline = [dict(type='PackMultiLabelInputs')]
    return cfg


def refine_on_this_rank():
    """Build the model (same weights on every rank), the training
    dataloader (its BalanceMixSampler) and the hooks, then run the hook's
    label-wise management for epoch 1 and the sampler update."""
    import mlimb_mm  # noqa: F401
    from mlimb_mm.engine.hooks import (BalanceMixHook, LabelRefinementHook,
                                       LabelStoreHook)
    init_default_scope('mmpretrain')
    cfg = small_cfg()
    torch.manual_seed(0)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pop('init_cfg', None)
    model = MODELS.build(model_cfg)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    store_hook = LabelStoreHook()
    refine_cfg = dict(cfg.refinement)
    refine_cfg.pop('type')
    refinement = LabelRefinementHook(**refine_cfg)
    hook = BalanceMixHook()
    runner = SimpleNamespace(model=model, train_dataloader=loader,
                             hooks=[store_hook, refinement, hook], cfg=cfg,
                             seed=0, epoch=0, train_loop=None, log_dir=None,
                             message_hub=None)
    for each in runner.hooks:
        each.before_train(runner)
    runner.epoch = refinement.warmup_epochs - 1  # the end of the warm-up
    refinement.after_train_epoch(runner)
    hook.after_train_epoch(runner)
    store = store_hook.get_store(runner)
    minority = hook.sampler.minority
    return dict(targets=store['targets'].clone(),
                weights=store['weights'].clone(),
                summary=dict(refinement.history[-1]),
                presence=minority.presence.clone(),
                absence=minority.absence.clone(),
                probs=minority.probabilities.clone())


def test_two_ranks_hold_the_same_refinement(tmp_path):
    rank0, rank1 = run_distributed(refine_on_this_rank,
                                   out_dir=str(tmp_path))
    for key in ('targets', 'weights', 'presence', 'absence'):
        assert torch.equal(rank0[key], rank1[key]), key
    assert torch.equal(rank0['probs'], rank1['probs'])
    for key in ('clean_pos', 'clean_neg', 'ambiguous', 'relabelled_to_0',
                'relabelled_to_1'):
        assert rank0['summary'][key] == rank1['summary'][key], key
    # the sharded pass saw every image once: the per-class confidences
    # equal those of one process running the whole pass
    single = refine_on_this_rank()
    torch.testing.assert_close(rank0['presence'], single['presence'])
    torch.testing.assert_close(rank0['absence'], single['absence'])
    assert rank0['summary']['observed'] == single['summary']['observed']
