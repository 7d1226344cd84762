# Focal loss row of the PLM paper's Table 1 on CocoLike-MLT: the focal row
# of the DistributionBalancedLoss (gamma 2, balance 2) on the BCE baseline's
# scale, plain sampler, no PLM.
_base_ = ['./resnet18_cocolike_mlt_bce.py']

model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='DistributionBalancedLoss',
            preset='Focal',
            use_avg_factor=True)))
