# RS: plain BCE with class-aware re-sampling (DB paper, Table 1 "RS") on
# CocoLike-MLT (../_base_/datasets/cocolike_mlt.py). The DB-family rows
# inherit from this file and only change the loss preset.
#
# ClassAwareSampler epochs hold N_max * K / reduce draws. With the paper's
# reduce=4 an epoch of this subset (N_max = 932, K = 80) would be 292
# iterations; reduce=40 gives 1,864 draws (30 iterations at batch 64), so
# 50 epochs make the 1,500 iterations of the 60-epoch BCE baseline.
# `use_avg_factor=True` keeps the loss on the BCE baseline's scale (sum over
# classes, mean over images) so that all rows share lr 0.1.
_base_ = ['./resnet18_cocolike_mlt_bce.py']

train_dataloader = dict(
    sampler=dict(_delete_=True, type='ClassAwareSampler', reduce=40))
model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='DistributionBalancedLoss',
            preset='BCE',
            use_avg_factor=True)))
# The loss reads n_k and N from the training set when training starts.
custom_hooks = [dict(type='ClassStatisticsHook')]

param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=50),
]
train_cfg = dict(max_epochs=50, val_interval=10)
