# WAN ("weak assume negative", Cole et al. 2021) on COCO 2014 PAL_0.6:
# unknown labels are negatives of weight 1 / (K - 1), observed labels weigh
# 1. Other settings: --cfg-options train_dataloader.dataset.keep_ratio=0.3
# (or train_dataloader.dataset.mode=ppl / spl).
_base_ = ['./resnet50_coco_pal60_an.py']
model = dict(
    head=dict(
        pass_tristate=True,
        loss=dict(
            _delete_=True, type='AssumeNegativeLoss',
            unknown_weight='wan')))
