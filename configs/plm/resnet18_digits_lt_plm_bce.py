# PLM (Duarte et al.) on BCE, embedded long-tailed digits: Table 1's
# "PLM (BCE)" row. Masks are drawn per epoch from the adaptive per-class
# target ratios (Eq. 3) and multiplied into the loss weight; the ratios
# follow Eq. (4)-(7) from the epoch's own training predictions. The
# paper's MultiMNIST settings: initial ratio = dataset ratio, lambda 0.01,
# tau 10, no clip. Ratios per epoch: <work_dir>/<timestamp>/plm_ratios.json.
_base_ = ['../baseline/resnet18_digits_lt_bce.py']

custom_hooks = [
    # owns the per-sample label store (observed labels + the PLM masks)
    dict(type='LabelStoreHook'),
    dict(type='PLMHook', lam=0.01, num_bins=10, init_ratio='dataset',
         clip=None),
]
