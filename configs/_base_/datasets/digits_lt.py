# LongTailMultiDigits: the embedded default dataset (built from
# scikit-learn's bundled digits, no download). 1238 training images of
# 40x40 px with 1-3 digits, class sizes 1000 -> 10 (imbalance ratio 100);
# 1000 near-balanced test images drawn from held-out handwritten digits.
dataset_type = 'LongTailMultiDigits'
num_classes = 10
data_preprocessor = dict(
    num_classes=num_classes,
    mean=[28.5, 28.5, 28.5],
    std=[62.6, 62.6, 62.6],
    to_rgb=False,
    to_onehot=True,
)

train_pipeline = [
    dict(type='RandomCrop', crop_size=40, padding=4),
    dict(type='PackMultiLabelInputs'),
]
test_pipeline = [dict(type='PackMultiLabelInputs')]

train_dataset = dict(
    type=dataset_type, split='train', imbalance_ratio=100, seed=0,
    pipeline=train_pipeline)
test_dataset = dict(
    type=dataset_type, split='test', seed=0, pipeline=test_pipeline)

train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=train_dataset,
)
val_dataloader = dict(
    batch_size=128,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=test_dataset,
)
test_dataloader = val_dataloader

# Groups from the training class sizes (1000 ... 10): many > 100,
# medium 20-100, few < 20, as in the DB and COMIC papers.
val_evaluator = [
    dict(
        type='LongTailMultiLabelMetric',
        train_dataset=dict(type=dataset_type, split='train',
                           imbalance_ratio=100, seed=0),
        group_thresholds=(20, 100)),
    dict(
        type='MultiLabelPRFMetric',
        train_dataset=dict(type=dataset_type, split='train',
                           imbalance_ratio=100, seed=0),
        num_least_frequent=3),
]
test_evaluator = val_evaluator
