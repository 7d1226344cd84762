# Table 2's -RLC row: COMIC without the Reflective Label Corrector (the
# branches train with the MFM loss on the observed labels; missing positives
# stay negatives).
_base_ = ['./resnet50_plt_coco_comic.py']
model = dict(
    head=dict(loss=dict(_delete_=True, type='MultiFocalModifierLoss')))
custom_hooks = [
    dict(type='ClassStatisticsHook'),
    dict(type='MovingGradientHook', mu=0.9),
]
