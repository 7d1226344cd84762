# BCE baseline on the embedded COCO-shaped digits (docs/cocolike.md): the
# digits ResNet-18 with an 80-class head, 1,500 natural training images,
# trained from scratch with the digits schedule (SGD 0.1, cosine, 60 epochs
# of 24 iterations at batch 64).
_base_ = [
    '../_base_/models/resnet18_digits.py',
    '../_base_/datasets/cocolike.py',
    '../_base_/schedules/digits_sgd_60e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    head=dict(num_classes=_base_.num_classes))
train_dataloader = dict(batch_size=64)
# a checkpoint every 10 epochs and at the last (a save takes ~0.2 s, as
# long as an iteration)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=10))
