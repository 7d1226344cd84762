# BalanceMix on PASCAL VOC 2007 trainval with 40% mislabelling, Eq. (11)
# (../_base_/datasets/voc_noisy.py), Appendix D: SGD momentum 0.9, weight
# decay 1e-4, lr 0.01 cosine, 448x448, 20 epochs, batch 32 (mixed images
# per step: B = 32 random + 32 minority loaded), 5 warm-up epochs; alpha 4,
# tau 0.975; the two views of Eq. (9) are RandAugment views made in the
# refinement pass. Flip / single positive: swap the dataset base for
# voc_noisy_flip.py / voc_single_positive.py (as the COCO variants do).
_base_ = [
    '../_base_/models/resnet50_multilabel.py',
    '../_base_/datasets/voc_noisy.py',
    '../_base_/datasets/pipelines/rand_aug_timm.py',
    '../_base_/default_runtime.py',
]
img_size = 448
num_classes = 20
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.6, 1.)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    _base_.rand_augment,
    dict(type='PackMultiLabelInputs', num_classes=num_classes),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackMultiLabelInputs', num_classes=num_classes),
]
view_transforms = [_base_.rand_augment]
model = dict(
    data_preprocessor=dict(
        _base_.data_preprocessor, type='BalanceMixDataPreprocessor',
        alpha=4.0),
    head=dict(num_classes=num_classes))

batch_size_per_half = 32
train_dataloader = dict(
    batch_size=2 * batch_size_per_half,
    sampler=dict(
        _delete_=True,
        type='BalanceMixSampler',
        batch_size_per_half=batch_size_per_half),
    dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=20),
]
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=2)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=2 * batch_size_per_half)

refinement = dict(
    type='LabelRefinementHook',
    warmup_epochs=5,
    tau=0.975,
    pass_pipeline=test_pipeline,
    view_transforms=view_transforms,
    pass_batch_size=64,
    group_thresholds=(1000, 10000))  # the paper's class groups
custom_hooks = [
    dict(type='LabelStoreHook'),
    refinement,
    dict(type='BalanceMixHook'),
]
