# Focal loss over AN (unknown labels as negatives) on PAL_0.6 of the
# embedded COCO-shaped digits: DistributionBalancedLoss's focal row (gamma
# 2, balance 2), summed over classes like the other losses here.
_base_ = ['./resnet18_cocolike_pal60_an.py']
model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='DistributionBalancedLoss',
            preset='Focal',
            use_avg_factor=True)))
