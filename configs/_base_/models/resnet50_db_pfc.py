# The Distribution-Balanced loss paper's released model (Wu et al. 2020):
# ImageNet ResNet-50 with its stem and first stage frozen
# (frozen_stages=1), a "PFC" neck GAP -> Linear 2048->256 -> BN, dropout 0.5
# and a linear classifier; DB-Focal loss by default.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        frozen_stages=1,
        style='pytorch',
        init_cfg=dict(
            type='Pretrained', checkpoint='torchvision://resnet50',
            prefix=None)),
    neck=dict(
        type='LinearNeck',
        in_channels=2048,
        out_channels=256,
        gap_dim=2,
        norm_cfg=dict(type='BN1d')),
    head=dict(
        type='TriStateLinearClsHead',
        num_classes=80,
        in_channels=256,
        dropout=0.5,
        loss=dict(type='DistributionBalancedLoss', preset='DB-Focal'),
    ),
)
# The loss reads n_k and N from the training set when training starts.
custom_hooks = [dict(type='ClassStatisticsHook')]
