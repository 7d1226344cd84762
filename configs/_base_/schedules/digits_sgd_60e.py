# Schedule of the embedded digits benchmark: SGD 0.1, one epoch of linear
# warm-up, cosine to 60 epochs (20 iterations each at batch 64; about two
# minutes on 2 CPU cores). 30 epochs leave the medium classes underfit.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=60),
]
train_cfg = dict(by_epoch=True, max_epochs=60, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64)
