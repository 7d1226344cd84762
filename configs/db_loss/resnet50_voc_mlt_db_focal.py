# DB-Focal on VOC-MLT (DB paper Table 1; reported 78.94 mAP): as COCO-MLT
# with the paper's VOC-MLT values mu=0.3 and lambda=5.
_base_ = [
    '../_base_/models/resnet50_db_pfc.py',
    '../_base_/datasets/voc_mlt.py',
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
    dict(type='PackMultiLabelInputs', num_classes=20),
]
train_dataloader = dict(
    batch_size=32,
    sampler=dict(_delete_=True, type='ClassAwareSampler', reduce=4),
    dataset=dict(dataset=dict(pipeline=db_train_pipeline)))
# VOC-MLT values: mu=0.3 and lambda=5 (the paper's §4.2).
voc_mlt_db_focal_loss = dict(
    type='DistributionBalancedLoss',
    preset='DB-Focal',
    map_param=dict(alpha=0.1, beta=10.0, mu=0.3),
    logit_reg=dict(init_bias=0.05, neg_scale=5.0))
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    head=dict(num_classes=20, loss=voc_mlt_db_focal_loss))
