# Table 5, "+ Minority sampler (Eq. 4)": random + minority mixing, no
# label-wise management (observed labels throughout).
_base_ = ['./resnet18_digits_lt_noisy_balancemix.py']

custom_hooks = [dict(type='BalanceMixHook')]
