# Table 5, "+ Clean labels (Eq. 8)" on the noisy COCO-shaped digits: after
# the warm-up only the labels the GMMs mark clean are learnt.
_base_ = ['./resnet18_cocolike_noisy_balancemix.py']

custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(_base_.refinement, use_relabel=False, use_ambiguous=False),
    dict(type='BalanceMixHook'),
]
