# COMIC's schedule (Zhang et al., ICCV 2023, §4.1: Adam, batch 32, 40
# epochs). The paper gives no learning rate: 1e-4 with the authors' weight
# decay 1e-4, decayed x0.1 every 12 epochs (the authors' StepLR).
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=1e-4, weight_decay=1e-4))
param_scheduler = [
    dict(type='StepLR', by_epoch=True, step_size=12, gamma=0.1),
]
train_cfg = dict(by_epoch=True, max_epochs=40, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=32)
