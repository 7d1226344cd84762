# COMIC on PLT-COCO with ONE SHARED ResNet-50 (the cheaper variant, not in
# the paper): the branches differ by a linear projection (2048 -> 1024, the
# size of the authors' code), their classifiers and moving vectors.
_base_ = ['./resnet50_plt_coco_comic.py']
model = dict(
    backbone_mode='shared',
    projection=dict(in_channels=2048, out_channels=1024),
    head=dict(in_channels=1024))
