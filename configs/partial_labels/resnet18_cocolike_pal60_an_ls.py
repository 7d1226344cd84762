# AN-LS (AN with Cole et al.'s label smoothing 0.1) on PAL_0.6 of the
# embedded COCO-shaped digits.
_base_ = ['./resnet18_cocolike_pal60_an.py']
model = dict(
    head=dict(
        pass_tristate=True,
        loss=dict(
            _delete_=True, type='AssumeNegativeLoss', label_smoothing=0.1)))
