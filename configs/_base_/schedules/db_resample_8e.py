# The DB paper's schedule for re-sampling runs: SGD lr 0.02 (batch 32),
# momentum 0.9, wd 1e-4, gradient clipping at 35, linear warm-up over 500
# iterations from 1/3, 8 epochs with steps at 5 and 7. Use it with
# class-aware re-sampling (the method configs set the sampler).
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1. / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=True, milestones=[5, 7], gamma=0.1),
]
train_cfg = dict(by_epoch=True, max_epochs=8, val_interval=8)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=32)
