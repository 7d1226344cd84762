# PASCAL VOC 2007 through mmpretrain's own `VOC` dataset; difficult objects
# become unknown labels (ignored by losses and metrics, the VOC protocol).
# Expected layout: data/VOCdevkit/VOC2007/{JPEGImages,Annotations,ImageSets}
dataset_type = 'VOC'
data_root = 'data/VOCdevkit/VOC2007'
num_classes = 20
data_preprocessor = dict(
    num_classes=num_classes,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
    to_onehot=True,
)
img_size = 224

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.6, 1.)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackMultiLabelInputs', num_classes=num_classes),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackMultiLabelInputs', num_classes=num_classes),
]

train_dataset = dict(
    type=dataset_type, data_root=data_root, split='trainval',
    pipeline=train_pipeline)
test_dataset = dict(
    type=dataset_type, data_root=data_root, split='test', test_mode=True,
    pipeline=test_pipeline)

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=train_dataset,
)
val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=test_dataset,
)
test_dataloader = val_dataloader

val_evaluator = dict(
    type='LongTailMultiLabelMetric',
    train_dataset=dict(type=dataset_type, data_root=data_root,
                       split='trainval'),
    group_thresholds=(20, 100))
test_evaluator = val_evaluator
