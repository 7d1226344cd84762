# Table 2's -MFM row on CocoLike-PLT: BCE instead of the Multi-Focal Modifier
# loss (MFM with both factors off and no probability shift is BCE); the
# corrector's distribution is static (no head-tail factor to act on).
_base_ = ['./resnet18_cocolike_plt_comic.py']
model = dict(
    head=dict(
        loss=dict(
            distribution='static',
            loss=dict(pn_factor=False, ht_factor=False, clip=0.))))
