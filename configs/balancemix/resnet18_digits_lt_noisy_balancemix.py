# BalanceMix (Song et al. 2024) on the noisy long-tailed digits (40%
# mislabelling): the full method, Table 5's last row.
#
# Each DataLoader batch holds 2B = 128 images: B = 64 from a random sampler,
# then B = 64 from the confidence-based minority sampler (Eq. 2-4,
# BalanceMixSampler). BalanceMixDataPreprocessor mixes them pair by pair,
# Eq. (5) (lam = max(lam', 1 - lam'), lam' ~ Beta(4, 4)), so the model
# trains on 64 mixed images per step: 20 steps per epoch, 90 epochs = 1800
# iterations as the BCE baseline (same pre-trained backbone and schedule,
# ./resnet18_digits_lt_noisy_bce.py). Warm-up: 18 epochs (1/5, as COCO's
# 10/50). From the end of the warm-up on, LabelRefinementHook runs one pass
# over the training set per epoch (losses + two RandAugment views of the
# same loaded images), fits the 2K GMMs and writes the refined
# targets/weights into the label store, which puts them into every batch as
# gt_score / label_weight (Eq. 8-10).
_base_ = [
    './resnet18_digits_lt_noisy_bce.py',
    '../_base_/hooks/digits_label_refinement.py',
]

model = dict(
    data_preprocessor=dict(type='BalanceMixDataPreprocessor', alpha=4.0))
batch_size_per_half = 64
train_dataloader = dict(
    batch_size=2 * batch_size_per_half,
    sampler=dict(
        _delete_=True,
        type='BalanceMixSampler',
        batch_size_per_half=batch_size_per_half,
        use_minority=True))
# the loaded batch is 2B, the trained one B
auto_scale_lr = dict(base_batch_size=2 * batch_size_per_half)

custom_hooks = [
    dict(type='LabelStoreHook'),
    _base_.refinement,
    dict(type='BalanceMixHook'),  # minority sampler updates, mixing draws
]
