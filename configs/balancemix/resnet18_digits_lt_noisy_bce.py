# BCE baseline on the noisy long-tailed digits (40% mislabelling, Eq. 11 of
# BalanceMix; see ../_base_/datasets/digits_lt_noisy.py): Table 5's
# "Default (BCE loss)" row. Same model and schedule as
# ../baseline/resnet18_digits_lt_bce.py (60 epochs x 20 iterations at
# batch 64 = 1200 iterations).
_base_ = [
    '../_base_/models/resnet18_digits.py',
    '../_base_/datasets/digits_lt_noisy.py',
    '../_base_/schedules/digits_sgd_60e.py',
    '../_base_/default_runtime.py',
]
model = dict(data_preprocessor=_base_.data_preprocessor)
train_dataloader = dict(batch_size=64)
default_hooks = dict(logger=dict(interval=10))
