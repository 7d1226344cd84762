# PLM (Duarte et al.) on BCE, CocoLike-MLT: Table 1's "PLM (BCE)" row. Masks
# are drawn per epoch from the adaptive per-class target ratios (Eq. 3) and
# multiplied into the loss weight; the ratios follow Eq. (4)-(7) from the
# epoch's own training predictions. The paper's MSCOCO settings (this is
# the COCO-shaped benchmark): initial ratio = dataset ratio, lambda 0.01,
# ratios clipped to [0, 1]. Ratios per epoch:
# <work_dir>/<timestamp>/plm_ratios.json.
_base_ = ['./resnet18_cocolike_mlt_bce.py']

plm_hooks = [
    # owns the per-sample label store (observed labels + the PLM masks)
    dict(type='LabelStoreHook'),
    dict(type='PLMHook', lam=0.01, num_bins=10, init_ratio='dataset',
         clip=(0, 1)),
]
custom_hooks = plm_hooks
