# ASL's COCO training recipe (Ridnik et al., "Asymmetric Loss for
# Multi-Label Classification", ICCV 2021, the authors' train.py): Adam,
# lr 1e-4 at a total batch of 128, weight decay 1e-4 except on biases and
# normalisation layers, a one-cycle schedule (cosine, 20% warm-up,
# div_factor 25, final_div_factor 1e4) and at most 40 epochs. ASL defines
# its cycle over 80 epochs and stops at 40 with the best EMA / plain mAP;
# here the cycle spans the 40 epochs that are trained, so that the lr
# anneals to its end and Eq. (9) of Zhang et al. sees the real total number
# of epochs. OneCycleLR sets the lr itself (eta_max; `--auto-scale-lr` does
# not change it): scale eta_max by hand for another total batch.
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
param_scheduler = [
    dict(type='OneCycleLR', eta_max=1e-4, pct_start=0.2, by_epoch=True,
         begin=0, end=40, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=40, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
