# PLM with the under-sampling baseline's sampler (S = 90 images per class
# per epoch, no duplicates; see resnet18_cocolike_mlt_undersample.py) on
# CocoLike-MLT: PLM's masks and ratios are per image and class of the
# dataset, the sampler only chooses which images an epoch visits.
_base_ = ['./resnet18_cocolike_mlt_plm_bce.py']

train_dataloader = dict(
    sampler=dict(_delete_=True, type='ClassUndersampler',
                 samples_per_class=90))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=70),
]
train_cfg = dict(max_epochs=70, val_interval=10)
