# Table 5, "+ Re-labeled labels (Eq. 9)": clean labels plus the re-labelled
# ones (weight 1); the ambiguous rest gets weight 0.
_base_ = ['./resnet18_digits_lt_noisy_balancemix.py']

custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(_base_.refinement, use_ambiguous=False),
    dict(type='BalanceMixHook'),
]
