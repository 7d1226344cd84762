# COMIC (Zhang et al., ICCV 2023) on CocoLike-PLT, the embedded PLT setting:
# the COCO-shaped digits' long-tailed subset with 40% of its positive
# labels missing (../_base_/datasets/cocolike_plt.py). The full method:
# Reflective Label Corrector (Eq. 2-3), Multi-Focal Modifier loss
# (Eq. 4-6) and the Head-Tail Balancer (Eq. 7-11) with ONE BACKBONE PER
# BRANCH (the paper), all three on the same batches.
#
# The paper's labels: a missing positive is written as 0, like a negative
# (the paper's "0 = unknown"), and the corrector may turn any label that is
# not an observed positive into a positive (correct_negatives=True).
# MissingLabelDataset's default (-1 for the missing positives) would tell
# the corrector where they are: every -1 is a positive.
#
# As the paper (ImageNet ResNet-50), each branch starts from a pre-trained
# backbone: the digits ResNet-18 pre-trained on printed coloured digits
# ('embedded://resnet18_printed_cocolike', built once on first use,
# about 5 minutes on 2 CPU cores). Adam, batch 32, 40 epochs (the paper's
# setting; 49 iterations per epoch over the 1,548 images), lr 1e-3 with
# the authors' step decay (x0.1 every 12 epochs). Corrections per epoch
# and their precision: <work_dir>/<timestamp>/label_corrections.json.
_base_ = [
    '../_base_/datasets/cocolike_plt.py',
    '../_base_/default_runtime.py',
]
pretrained = 'embedded://resnet18_printed_cocolike'
model = dict(
    type='COMICClassifier',
    backbone_mode='separate',
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        strides=(2, 2, 2, 2),
        out_indices=(3, ),
        style='pytorch',
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='COMICHead',
        num_classes=_base_.num_classes,
        in_channels=128,
        num_heads=2,
        loss=dict(
            type='ReflectiveLabelCorrectionLoss',
            tau=0.7,
            mean='running',
            distribution='dynamic',
            correct_negatives=True,
            loss=dict(type='MultiFocalModifierLoss')),
        distill=dict(alpha=2., phi='softmax', score='map', loss_weight=1.)),
    data_preprocessor=_base_.data_preprocessor)

train_dataloader = dict(batch_size=32, dataset=dict(missing_as='negative'))
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='StepLR', by_epoch=True, step_size=12, gamma=0.1),
]
train_cfg = dict(by_epoch=True, max_epochs=40, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=32)

comic_hooks = [
    dict(type='LabelStoreHook'),  # the corrections' marks
    dict(type='ClassStatisticsHook'),  # n_k of the head-tail factor
    dict(type='ReflectiveLabelCorrectionHook'),
    dict(type='MovingGradientHook', mu=0.9),
]
custom_hooks = comic_hooks
# a checkpoint every 10 epochs and at the last (a save takes ~0.2 s, as
# long as an iteration)
default_hooks = dict(
    logger=dict(interval=16), checkpoint=dict(interval=10))
