# BCE baseline of COMIC's Table 1 on CocoLike-PLT: the pre-trained digits
# ResNet-18 of the COMIC configs with a linear head, missing labels
# treated as negatives (what a PLT-MLC baseline sees), the same data,
# optimiser and schedule as resnet18_cocolike_plt_comic.py.
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
        loss=dict(type='MultiLabelBCELoss')),
    data_preprocessor=_base_.data_preprocessor)
custom_hooks = []
