# CocoLikeDigits: the embedded COCO-shaped benchmark (built from
# scikit-learn's bundled digits, no download; docs/cocolike.md). 80 classes
# (10 digit shapes x 8 colours, e.g. 'red 3'), 48x48 RGB canvases with 1-8
# objects, label sets from a seeded scene model with COCO 2017's statistics:
# ~2.9 positives per image, the head class in ~54% of the images, the
# rarest in ~0.2%, classes of a scene co-occurring more than chance.
# Natural (clean) setting: 1,500 training images drawn from the model (seed
# 0: class sizes 782 ... 2; a 60-epoch run of the digits ResNet-18 stays
# within a few minutes on 2 CPU cores); the test split is 2,000 images drawn
# from the model, topped up so that every class has >= 15 positives (2,166
# images), from held-out handwritten digits.
dataset_type = 'CocoLikeDigits'
num_classes = 80
data_preprocessor = dict(
    num_classes=num_classes,
    mean=[18.5, 17.6, 15.4],
    std=[52.4, 50.8, 48.2],
    to_rgb=False,  # the canvases are RGB already
    to_onehot=True,
)

train_pipeline = [
    dict(type='RandomCrop', crop_size=48, padding=4),
    dict(type='PackMultiLabelInputs'),
]
test_pipeline = [dict(type='PackMultiLabelInputs')]

# the arguments both splits share (the label model depends on them)
cocolike_args = dict(type=dataset_type, seed=0)
cocolike_train = dict(cocolike_args, split='train', num_train_images=1500)
train_dataset = dict(cocolike_train, pipeline=train_pipeline)
test_dataset = dict(cocolike_args, split='test', pipeline=test_pipeline)

train_dataloader = dict(
    batch_size=64,
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

# many > 100, medium 20-100, few < 20 training images (DB / COMIC): on the
# seed-0 natural training set (class sizes 782 ... 2) 13 / 33 / 34 classes,
# each group holding >= 10 classes (tools/dataset_converters/
# label_statistics.py configs/_base_/datasets/cocolike.py prints them).
group_thresholds = (20, 100)
val_evaluator = [
    dict(
        type='LongTailMultiLabelMetric',
        train_dataset=cocolike_train,
        group_thresholds=group_thresholds),
    dict(
        type='MultiLabelPRFMetric',
        train_dataset=cocolike_train,
        num_least_frequent=3),
]
test_evaluator = val_evaluator
