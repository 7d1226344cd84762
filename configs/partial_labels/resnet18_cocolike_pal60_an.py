# AN ("assume negative") on PAL_0.6 of the embedded COCO-shaped digits
# (../_base_/datasets/cocolike_pal60.py: 60% of all the training labels of
# the 1,500 natural CocoLikeDigits images kept, the rest unknown): every
# unknown label trained as a negative (BCE, the head's
# ignore_unknown=False). Every embedded config of Zhang et al. inherits
# this file.
#
# Recipe, as the COCO configs: a pre-trained backbone (the digits ResNet-18
# pre-trained on PRINTED coloured digits, ../pretrain/
# resnet18_printed_cocolike.py, the embedded stand-in for ImageNet; the
# 'embedded://' checkpoint is trained once on first use, about 5 minutes
# on 2 CPU cores) and ASL's Adam one-cycle
# (../_base_/schedules/adam_onecycle_40e.py) with the digits' batch of 64,
# max lr 1e-3 for this small network and the digits' 60 epochs (32
# iterations each). Adam also keeps the comparison fair between losses of
# very different scales (the dynamic loss averages over each image's
# labels, BCE sums them).
_base_ = [
    '../_base_/models/resnet18_digits.py',
    '../_base_/datasets/cocolike_pal60.py',
    '../_base_/schedules/adam_onecycle_40e.py',
    '../_base_/default_runtime.py',
]
pretrained = 'embedded://resnet18_printed_cocolike'
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      prefix='backbone.')),
    head=dict(num_classes=_base_.num_classes, ignore_unknown=False))
train_dataloader = dict(batch_size=64)
max_epochs = 60
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='OneCycleLR', eta_max=1e-3, pct_start=0.2, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
auto_scale_lr = dict(base_batch_size=64)
# a checkpoint every 10 epochs and at the last (a save takes ~0.2 s, as
# long as an iteration)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=10))
