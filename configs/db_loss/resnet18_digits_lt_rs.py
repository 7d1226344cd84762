# RS: plain BCE with class-aware re-sampling (DB paper, Table 1 "RS") on the
# embedded long-tailed digits. The DB-family rows inherit from this file and
# only change the loss preset.
#
# Re-sampling epochs hold N_max * K / 4 = 2500 draws (40 iterations), so
# 30 epochs give the same 1200 iterations as the 60-epoch BCE baseline.
# `use_avg_factor=True` keeps the loss on the BCE baseline's scale (sum over
# classes, mean over images) so that all rows share lr 0.1; the released
# DB code's mean over B x K is the default for COCO / VOC.
_base_ = ['../baseline/resnet18_digits_lt_bce.py']

train_dataloader = dict(
    sampler=dict(_delete_=True, type='ClassAwareSampler', reduce=4))
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
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=30),
]
train_cfg = dict(max_epochs=30, val_interval=10)
