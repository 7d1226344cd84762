# Table 5, "+ Clean labels (Eq. 8)": after the warm-up only the labels the
# GMMs mark clean are learnt; every other label gets weight 0.
_base_ = ['./resnet18_digits_lt_noisy_balancemix.py']

custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(_base_.refinement, use_relabel=False, use_ambiguous=False),
    dict(type='BalanceMixHook'),
]
