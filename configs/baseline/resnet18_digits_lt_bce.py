# BCE baseline on the embedded long-tailed multi-label digits.
_base_ = [
    '../_base_/models/resnet18_digits.py',
    '../_base_/datasets/digits_lt.py',
    '../_base_/schedules/digits_sgd_60e.py',
    '../_base_/default_runtime.py',
]
model = dict(data_preprocessor=_base_.data_preprocessor)
train_dataloader = dict(batch_size=64)
# a checkpoint every 10 epochs and at the last (a save takes ~0.2 s, as
# long as an iteration)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=10))
