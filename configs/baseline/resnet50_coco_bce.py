# BCE baseline, ResNet-50 on MS-COCO (80 classes), 224 px, 20 epochs.
_base_ = [
    '../_base_/models/resnet50_multilabel.py',
    '../_base_/datasets/coco_multilabel.py',
    '../_base_/schedules/sgd_cosine_20e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=_base_.data_preprocessor, head=dict(num_classes=80))
