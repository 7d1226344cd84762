# AN-LS (AN with Cole et al.'s label smoothing, 0.1) on COCO 2014 PAL_0.6:
# targets 0.9 for positives, 0.1 for observed and assumed negatives.
_base_ = ['./resnet50_coco_pal60_an.py']
model = dict(
    head=dict(
        pass_tristate=True,
        loss=dict(
            _delete_=True, type='AssumeNegativeLoss', label_smoothing=0.1)))
