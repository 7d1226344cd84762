# Table 2's -MFM row: COMIC with BCE instead of the Multi-Focal Modifier loss
# (MFM with both factors off and no probability shift is BCE; it also scores
# the distillation of Eq. 11). Without the head-tail factor the corrector's
# distribution has nothing to act on: static.
_base_ = ['./resnet50_plt_coco_comic.py']
model = dict(
    head=dict(
        loss=dict(
            distribution='static',
            loss=dict(pn_factor=False, ht_factor=False, clip=0.))))
