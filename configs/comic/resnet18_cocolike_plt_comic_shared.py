# COMIC on CocoLike-PLT with ONE SHARED BACKBONE (the cheaper variant): the
# three branches differ by a linear projection (128 -> 128), their
# classifier and their moving vector. Otherwise as
# resnet18_cocolike_plt_comic.py.
_base_ = ['./resnet18_cocolike_plt_comic.py']
model = dict(
    backbone_mode='shared',
    projection=dict(in_channels=128, out_channels=128))
