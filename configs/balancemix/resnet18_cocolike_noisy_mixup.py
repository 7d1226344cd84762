# Table 5, "+ Random sampler (= Mixup)" on the noisy COCO-shaped digits:
# random + random mixing with Eq. (5)'s lam = max(lam', 1 - lam'), observed
# labels throughout.
_base_ = ['./resnet18_cocolike_noisy_balancemix.py']

train_dataloader = dict(sampler=dict(use_minority=False))
custom_hooks = [dict(type='BalanceMixHook')]
