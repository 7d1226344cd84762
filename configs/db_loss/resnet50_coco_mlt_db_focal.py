# DB-Focal on COCO-MLT (DB paper Table 1, last row; reported 53.55 mAP):
# the released model, 224 px with flip, photometric distortion and random
# crops of at least 0.8 of the side, 8 re-sampled epochs.
# The other Table 1 rows inherit this file and change `preset`.
_base_ = [
    '../_base_/models/resnet50_db_pfc.py',
    '../_base_/datasets/coco_mlt.py',
    '../_base_/schedules/db_resample_8e.py',
    '../_base_/default_runtime.py',
]
img_size = 224
db_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size,
         crop_ratio_range=(0.64, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=32 / 255, contrast=0.5,
         saturation=0.5, hue=18 / 360),
    dict(type='PackMultiLabelInputs'),
]
train_dataloader = dict(
    batch_size=32,
    sampler=dict(_delete_=True, type='ClassAwareSampler', reduce=4),
    dataset=dict(dataset=dict(pipeline=db_train_pipeline)))
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    # The loss defaults are the COCO-MLT values: alpha=0.1, beta=10,
    # mu=0.2, kappa=0.05, lambda=2.
    head=dict(num_classes=80))
