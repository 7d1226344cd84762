# Table 2's -HTB row: COMIC without the Head-Tail Balancer: one ResNet-50
# with a linear head trained with the corrector around the MFM loss (no
# branches, attention, cosine classifier, moving vectors nor distillation).
_base_ = ['./resnet50_plt_coco_comic.py']
model = dict(
    _delete_=True,
    type='ImageClassifier',
    backbone=_base_.model.backbone,
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='TriStateLinearClsHead',
        num_classes=80,
        in_channels=2048,
        ignore_unknown=False,
        pass_tristate=True,
        loss=_base_.model.head.loss),
    data_preprocessor=_base_.data_preprocessor)
custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(type='ClassStatisticsHook'),
    dict(type='ReflectiveLabelCorrectionHook'),
]
