# A narrow ResNet-18 (CIFAR 3x3 stem, 16 base channels, stride 2 from the
# first stage, 0.7M parameters) that trains on 40x40 digits in a few
# minutes on 2 CPU cores.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        strides=(2, 2, 2, 2),
        out_indices=(3, ),
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='TriStateLinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='MultiLabelBCELoss'),
    ),
)
