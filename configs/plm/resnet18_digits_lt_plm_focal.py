# PLM on the focal loss (Table 1, "PLM (Focal)"): the focal row of the
# DistributionBalancedLoss (gamma 2, balance 2) on the BCE baseline's scale
# (`use_avg_factor=True`: sum over classes, mean over images), plain sampler.
_base_ = ['./resnet18_digits_lt_plm_bce.py']

model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='DistributionBalancedLoss',
            preset='Focal',
            use_avg_factor=True)))
