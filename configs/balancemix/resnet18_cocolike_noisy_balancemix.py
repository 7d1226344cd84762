# BalanceMix (Song et al. 2024) on the noisy COCO-shaped digits (40%
# mislabelling): the full method, Table 5's last row. Each DataLoader batch
# holds 2B = 128 images, B = 64 random then B = 64 minority (Eq. 2-4);
# BalanceMixDataPreprocessor mixes them pair by pair (Eq. 5) and the model
# trains on 64 mixed images per step, the BCE baseline's schedule. After the
# warm-up, LabelRefinementHook manages every label (Eq. 6-10) and its pass
# also feeds the minority sampler.
_base_ = [
    './resnet18_cocolike_noisy_bce.py',
    '../_base_/hooks/cocolike_label_refinement.py',
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
auto_scale_lr = dict(base_batch_size=2 * batch_size_per_half)

custom_hooks = [
    dict(type='LabelStoreHook'),
    _base_.refinement,
    dict(type='BalanceMixHook'),
]
