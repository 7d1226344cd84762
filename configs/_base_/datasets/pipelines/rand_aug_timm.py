# RandAugment as timm trains ImageNet models (2 ops, magnitude 9 +- 0.5 of
# 10, bicubic, ImageNet-mean padding): the BalanceMix COCO / VOC configs use
# it in their training pipelines and for the two views of Eq. (9). Inherit
# this file and refer to `_base_.rand_augment`.
rand_augment = dict(
    type='RandAugment',
    policies='timm_increasing',
    num_policies=2,
    total_level=10,
    magnitude_level=9,
    magnitude_std=0.5,
    hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic'))
