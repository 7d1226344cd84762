# MS-COCO 2014/2017 as 80-class multi-label classification.
# Expected layout (change data_root or the paths below):
#   data/coco/annotations/instances_train2017.json
#   data/coco/annotations/instances_val2017.json
#   data/coco/train2017/*.jpg, data/coco/val2017/*.jpg
dataset_type = 'CocoMultiLabelDataset'
data_root = 'data/coco/'
num_classes = 80
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
    dict(type='PackMultiLabelInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackMultiLabelInputs'),
]

train_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='annotations/instances_train2017.json',
    data_prefix=dict(img_path='train2017/'),
    pipeline=train_pipeline)
test_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='annotations/instances_val2017.json',
    data_prefix=dict(img_path='val2017/'),
    test_mode=True,
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

# The metric reads the class sizes from the training annotations (one extra
# parse of the json when the first evaluation runs).
val_evaluator = dict(
    type='LongTailMultiLabelMetric',
    train_dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img_path='train2017/')),
    group_thresholds=(20, 100))
test_evaluator = val_evaluator
