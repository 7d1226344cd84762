# Table 5, "+ Minority sampler (Eq. 4)" on the noisy COCO-shaped digits:
# random + minority mixing, observed labels throughout.
_base_ = ['./resnet18_cocolike_noisy_balancemix.py']

custom_hooks = [dict(type='BalanceMixHook')]
