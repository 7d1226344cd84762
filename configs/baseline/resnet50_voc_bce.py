# BCE baseline, ResNet-50 on PASCAL VOC 2007 (20 classes), 224 px.
_base_ = [
    '../_base_/models/resnet50_multilabel.py',
    '../_base_/datasets/voc_multilabel.py',
    '../_base_/schedules/sgd_cosine_20e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=_base_.data_preprocessor, head=dict(num_classes=20))
