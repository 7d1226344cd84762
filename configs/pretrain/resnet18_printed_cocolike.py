# Pre-training of the COCO-shaped digits' backbone on PRINTED coloured
# digits (PrintedCocoLikeDigits: OpenCV Hershey fonts in scikit-learn's 8x8
# format, the 80 classes of CocoLikeDigits -- 10 digit shapes x 8 colours --
# composed on 48 px canvases, 1-4 classes per image, balanced, clean
# labels): the embedded stand-in for ImageNet pre-training, as
# resnet18_printed_digits.py is for the grey digits. No handwritten digit is
# used for training; the natural CocoLikeDigits test split only reports how
# well the features transfer.
#
# Configs get its backbone as
#   init_cfg=dict(type='Pretrained', prefix='backbone.',
#                 checkpoint='embedded://resnet18_printed_cocolike')
# which trains this config once on first use and caches the weights in
# $MLIMB_MM_HOME (mlimb_mm/utils/embedded_weights.py). By hand:
#   python tools/train.py configs/pretrain/resnet18_printed_cocolike.py \
#       --work-dir work_dirs/pretrain_printed_cocolike
#
# 6000 canvases, 20 epochs x 94 iterations at batch 64 (about 5 minutes on
# 2 CPU cores).
_base_ = [
    '../_base_/models/resnet18_digits.py',
    '../_base_/datasets/cocolike.py',
    '../_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=_base_.data_preprocessor,
    head=dict(num_classes=_base_.num_classes))
train_dataloader = dict(
    batch_size=64,
    dataset=dict(
        _delete_=True,
        type='PrintedCocoLikeDigits',
        num_images=6000,
        seed=0,
        pipeline=_base_.train_pipeline))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=20),
]
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=20)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(interval=20, max_keep_ckpts=1))
