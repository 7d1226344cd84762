# BalanceMix on the long-tailed digits with single positive labels (Kim et
# al. 2022; one positive kept per image, the other labels read as
# negatives, missing_as='negative'): re-labelling threshold tau = 0.55,
# the paper's value for this setting.
_base_ = ['./resnet18_digits_lt_noisy_balancemix.py']

train_dataloader = dict(
    dataset=dict(noise_type='single_positive', missing_as='negative'))
custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(_base_.refinement, tau=0.55),
    dict(type='BalanceMixHook'),
]
