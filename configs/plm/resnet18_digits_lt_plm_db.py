# PLM on the Distribution-Balanced loss (R-BCE + NT-BCE, Wu et al.) -- PLM
# wraps any per-element loss (configs/plm/README.md). Plain sampler: PLM's
# ratios are defined on the dataset, class-aware re-sampling would change the
# ratio the network actually sees. ClassStatisticsHook gives the loss n_k
# and N from the training set.
_base_ = ['./resnet18_digits_lt_plm_bce.py']

model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='DistributionBalancedLoss',
            preset='DB',
            use_avg_factor=True)))
custom_hooks = [
    dict(type='ClassStatisticsHook'),
    dict(type='LabelStoreHook'),
    dict(type='PLMHook', lam=0.01, num_bins=10, init_ratio='dataset',
         clip=None),
]
