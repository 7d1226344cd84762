# Table 2's -RLC row on CocoLike-PLT: COMIC without the Reflective Label
# Corrector (the branches train with the MFM loss on the observed labels).
_base_ = ['./resnet18_cocolike_plt_comic.py']
model = dict(
    head=dict(loss=dict(_delete_=True, type='MultiFocalModifierLoss')))
custom_hooks = [
    dict(type='ClassStatisticsHook'),
    dict(type='MovingGradientHook', mu=0.9),
]
