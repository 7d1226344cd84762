# Table 2's -HTB row on CocoLike-PLT: one digits ResNet-18 with a linear head
# trained with the corrector around the MFM loss (no branches).
_base_ = ['./resnet18_cocolike_plt_comic.py']
model = dict(
    _delete_=True,
    type='ImageClassifier',
    backbone=_base_.model.backbone,
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='TriStateLinearClsHead',
        num_classes=_base_.num_classes,
        in_channels=128,
        ignore_unknown=False,
        pass_tristate=True,
        loss=_base_.model.head.loss),
    data_preprocessor=_base_.data_preprocessor)
custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(type='ClassStatisticsHook'),
    dict(type='ReflectiveLabelCorrectionHook'),
]
