# The GMM label refinement on its own, with another loss and sampler:
# DB-Focal (Wu et al. 2020) with class-aware re-sampling on the noisy
# long-tailed digits (40% mislabelling), no mixing. After the warm-up the
# labels the GMMs find clean keep their value, confident ones are
# re-labelled and the rest weigh their clean probability (BalanceMix
# Eq. 6-10, LabelRefinementHook); DB's re-balancing weights multiply in.
_base_ = [
    './resnet18_digits_lt_noisy_bce.py',
    '../_base_/hooks/digits_label_refinement.py',
]

train_dataloader = dict(
    sampler=dict(_delete_=True, type='ClassAwareSampler', reduce=4))
model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='DistributionBalancedLoss',
            preset='DB-Focal',
            use_avg_factor=True)))
custom_hooks = [
    dict(type='ClassStatisticsHook'),
    dict(type='LabelStoreHook'),
    _base_.refinement,
]
