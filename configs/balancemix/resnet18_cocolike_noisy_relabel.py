# Table 5, "+ Re-labeled labels (Eq. 9)" on the noisy COCO-shaped digits:
# clean plus re-labelled labels; the ambiguous rest gets weight 0.
_base_ = ['./resnet18_cocolike_noisy_balancemix.py']

custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(_base_.refinement, use_ambiguous=False),
    dict(type='BalanceMixHook'),
]
