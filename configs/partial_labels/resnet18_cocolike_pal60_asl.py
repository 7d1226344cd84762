# ASL over AN (unknown labels as negatives) on PAL_0.6 of the embedded
# COCO-shaped digits: gamma_neg 4, gamma_pos 0, clip 0.05 (ASL's COCO
# settings), with per-label weights.
_base_ = ['./resnet18_cocolike_pal60_an.py']
model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='MultiLabelAsymmetricLoss',
            gamma_pos=0.,
            gamma_neg=4.,
            clip=0.05)))
