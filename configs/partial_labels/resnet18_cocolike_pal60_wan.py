# WAN (Cole et al. 2021) on PAL_0.6 of the embedded COCO-shaped digits:
# unknown labels are negatives of weight 1 / (K - 1) = 1/79.
_base_ = ['./resnet18_cocolike_pal60_an.py']
model = dict(
    head=dict(
        pass_tristate=True,
        loss=dict(
            _delete_=True, type='AssumeNegativeLoss',
            unknown_weight='wan')))
