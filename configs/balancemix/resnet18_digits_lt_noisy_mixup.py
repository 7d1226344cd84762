# Table 5, "+ Random sampler (= Mixup)": random + random mixing with
# Eq. (5)'s lam = max(lam', 1 - lam'), no minority sampling, no label-wise
# management (observed labels throughout).
_base_ = ['./resnet18_digits_lt_noisy_balancemix.py']

train_dataloader = dict(sampler=dict(use_minority=False))
custom_hooks = [dict(type='BalanceMixHook')]
