# Under-sampling baseline of the PLM paper (Table 1, "BCE" with "Und."):
# every epoch, S images per class without duplicates (the union of the
# per-class draws), BCE loss.
#
# S = 100 (10% of the largest class; the paper's 500 is 5% of MultiMNIST's
# largest class). An epoch then holds ~570 of the 1238 images (9 iterations
# at batch 64, varying slightly with the draw), so 130 epochs give about
# the 1200 iterations of the 60-epoch BCE baseline.
_base_ = ['../baseline/resnet18_digits_lt_bce.py']

train_dataloader = dict(
    sampler=dict(_delete_=True, type='ClassUndersampler',
                 samples_per_class=100))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=2, end=130),
]
train_cfg = dict(max_epochs=130, val_interval=26)
