# Focal loss baseline of the PLM paper (Table 1, "Focal"): the focal row of
# the DistributionBalancedLoss (gamma 2, balance 2) on the BCE baseline's
# scale, plain sampler, no PLM.
_base_ = ['../baseline/resnet18_digits_lt_bce.py']

model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='DistributionBalancedLoss',
            preset='Focal',
            use_avg_factor=True)))
