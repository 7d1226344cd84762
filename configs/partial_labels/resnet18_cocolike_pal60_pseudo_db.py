# Composition (not in the paper): Zhang et al.'s method with the
# Distribution-Balanced re-weighting (R-BCE, Wu et al. Eq. 2-5,
# ../db_loss/README.md) on PAL_0.6 of the embedded COCO-shaped digits:
# DynamicPartialLoss multiplies each term by the re-weighting of the
# image's observed positives (label_weighting), with the class counts of
# the observed training labels from ClassStatisticsHook.
_base_ = ['./resnet18_cocolike_pal60_pseudo.py']
model = dict(
    head=dict(
        loss=dict(
            label_weighting=dict(
                type='DistributionBalancedLoss', preset='R-BCE'))))
custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(type='PseudoLabelHook', init_value=0.5),
    dict(type='ClassStatisticsHook'),
]
