# AN ("assume negative", Zhang et al. §V-B after Kundu & Tighe / Cole et
# al.) on COCO 2014 PAL_0.6: 60% of all the training labels kept, every
# unknown label trained as a negative (BCE, the head's
# ignore_unknown=False). Every COCO config of Zhang et al. inherits this
# file; configs/partial_labels/README.md has the whole recipe.
#
# Zhang et al. §V: COCO 2014's official split (82,081 training images with
# labels, 40,137 test images), ImageNet-pretrained ResNet-50 with a linear
# head, 448x448 resize, horizontal flip 0.5, ImageNet normalisation, mAP
# on the full test labels. The paper gives no optimiser or schedule: ASL's
# COCO recipe (../_base_/schedules/adam_onecycle_40e.py: Adam, lr 1e-4,
# one cycle, total batch 128 = 8 GPUs x 16, 40 epochs).
_base_ = [
    '../_base_/models/resnet50_multilabel.py',
    '../_base_/datasets/coco_partial.py',
    '../_base_/schedules/adam_onecycle_40e.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/coco/'
img_size = 448
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackMultiLabelInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackMultiLabelInputs'),
]
# COCO 2014, images with at least one object (Cole et al.'s format)
coco2014_train = dict(
    type='CocoMultiLabelDataset',
    data_root=data_root,
    ann_file='annotations/instances_train2014.json',
    data_prefix=dict(img_path='train2014/'),
    keep_empty=False)
coco2014_test = dict(
    coco2014_train,
    ann_file='annotations/instances_val2014.json',
    data_prefix=dict(img_path='val2014/'),
    test_mode=True)

model = dict(
    data_preprocessor=_base_.data_preprocessor,
    head=dict(num_classes=80, ignore_unknown=False))
train_dataloader = dict(
    batch_size=16,
    # the MissingLabelDataset (PAL, keep_ratio 0.6) of coco_partial.py
    dataset=dict(dataset=dict(coco2014_train, pipeline=train_pipeline)))
val_dataloader = dict(
    batch_size=32,
    dataset=dict(_delete_=True, pipeline=test_pipeline, **coco2014_test))
test_dataloader = val_dataloader
# mAP and its many / medium / few groups by the full training labels
val_evaluator = dict(train_dataset=dict(_delete_=True, **coco2014_train))
test_evaluator = val_evaluator
