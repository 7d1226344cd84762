# Focal loss over AN (Zhang et al. §V-B: unknown labels as negatives) on
# COCO 2014 PAL_0.6: the focal row of DistributionBalancedLoss (gamma 2,
# balance 2), summed over classes like the other losses here.
_base_ = ['./resnet50_coco_pal60_an.py']
model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='DistributionBalancedLoss',
            preset='Focal',
            use_avg_factor=True)))
