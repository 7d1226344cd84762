# COMIC (Zhang et al., ICCV 2023): the three-branch model of the Head-Tail
# Balancer with one ImageNet ResNet-50 per branch (the paper), the
# Reflective Label Corrector around the Multi-Focal Modifier loss in every
# branch, and the distillation of Eq. (11). Configs set num_classes and the
# data_preprocessor; notes in configs/comic/README.md.
model = dict(
    type='COMICClassifier',
    backbone_mode='separate',
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
        type='COMICHead',
        num_classes=80,
        in_channels=2048,
        num_heads=2,
        loss=dict(
            type='ReflectiveLabelCorrectionLoss',
            tau=0.7,
            mean='running',
            distribution='dynamic',
            correct_negatives=True,
            loss=dict(type='MultiFocalModifierLoss')),
        distill=dict(alpha=2., phi='softmax', score='map', loss_weight=1.)),
)
# the hooks every COMIC config needs
comic_hooks = [
    dict(type='LabelStoreHook'),  # the corrections' marks
    dict(type='ClassStatisticsHook'),  # n_k of the head-tail factor
    dict(type='ReflectiveLabelCorrectionHook'),
    dict(type='MovingGradientHook', mu=0.9),
]
custom_hooks = comic_hooks
