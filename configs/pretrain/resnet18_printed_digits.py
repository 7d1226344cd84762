# Pre-training of the digits backbone on PRINTED digits (PrintedMultiDigits:
# OpenCV Hershey fonts in scikit-learn's 8x8 format, composed on 40 px
# canvases, balanced, clean labels): the embedded stand-in for the ImageNet
# pre-training that BalanceMix and the other noisy-label papers fine-tune
# from. No handwritten digit is used for training; the handwritten test
# split only reports how well the features transfer.
#
# The noisy digits configs get its backbone as
#   init_cfg=dict(type='Pretrained', prefix='backbone.',
#                 checkpoint='embedded://resnet18_printed_digits')
# which trains this config once on first use and caches the weights in
# $MLIMB_MM_HOME, default ~/.cache/mlimb_mm (mlimb_mm/utils/
# embedded_weights.py). By hand:
#   python tools/train.py configs/pretrain/resnet18_printed_digits.py \
#       --work-dir work_dirs/pretrain_printed_digits
#
# 4000 canvases, 25 epochs x 62 iterations at batch 64 (about 3 minutes on
# 2 CPU cores).
_base_ = [
    '../_base_/models/resnet18_digits.py',
    '../_base_/datasets/digits_lt.py',
    '../_base_/default_runtime.py',
]
model = dict(data_preprocessor=_base_.data_preprocessor)
train_dataloader = dict(
    batch_size=64,
    dataset=dict(
        _delete_=True,
        type='PrintedMultiDigits',
        num_images=4000,
        seed=0,
        pipeline=_base_.train_pipeline))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=25),
]
train_cfg = dict(by_epoch=True, max_epochs=25, val_interval=25)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(interval=25, max_keep_ckpts=1))
