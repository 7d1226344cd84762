# ASL over AN (unknown labels as negatives) on COCO 2014 PAL_0.6: the
# asymmetric loss with ASL's COCO settings (gamma_neg 4, gamma_pos 0, clip
# 0.05), with per-label weights.
_base_ = ['./resnet50_coco_pal60_an.py']
model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='MultiLabelAsymmetricLoss',
            gamma_pos=0.,
            gamma_neg=4.,
            clip=0.05)))
