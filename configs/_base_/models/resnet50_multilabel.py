# ResNet-50 (ImageNet-pretrained torchvision weights via mmpretrain's
# checkpoint, set `init_cfg` below to a local file when offline) with a
# linear multi-label head whose loss ignores unknown labels.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='torchvision://resnet50',
            prefix=None)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='TriStateLinearClsHead',
        num_classes=80,
        in_channels=2048,
        loss=dict(type='MultiLabelBCELoss'),
    ),
)
