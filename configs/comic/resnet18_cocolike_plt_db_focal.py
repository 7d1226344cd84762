# DB-Focal baseline of COMIC's Table 1 on CocoLike-PLT: the Distribution-
# Balanced loss with its focal term and class-aware re-sampling (Wu et al.
# 2020, as configs/db_loss/resnet18_cocolike_mlt_db_focal.py), on the
# pre-trained digits ResNet-18 with a linear head, missing positives read as
# negatives; the data, optimiser and schedule of resnet18_cocolike_plt_bce.py.
#
# ClassAwareSampler epochs hold N_max * K / reduce draws. Here N_max counts
# the observed positives of the largest class (572 with 40% missing), so
# reduce=29.5 gives 1,552 draws: 49 iterations at batch 32, the epoch of
# the instance-sampled rows (1,548 images), whose epoch-based step decay
# this row shares. (The MLT rows' reduce=40 would give 36.)
_base_ = ['./resnet18_cocolike_plt_bce.py']
train_dataloader = dict(
    sampler=dict(_delete_=True, type='ClassAwareSampler', reduce=29.5))
model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='DistributionBalancedLoss',
            preset='DB-Focal',
            use_avg_factor=True)))
custom_hooks = [dict(type='ClassStatisticsHook')]
