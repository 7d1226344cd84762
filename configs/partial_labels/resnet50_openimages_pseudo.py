# Zhang et al.'s method on Open Images (Fig. 2; about 4 mAP over BCE in the
# paper): the verified labels as observed labels, every absent (image,
# class) pair unknown with a pseudo label (PseudoLabelHook: 0.5, then the
# epoch's predictions) and the dynamic loss (DynamicPartialLoss) on them.
# Data and recipe of ./resnet50_openimages_bce.py. Cost: one (N, K)
# float16 label-store field beside the int8 observed labels, 3 B per label
# and process (N x 600 x 3 B:
# ~3 GB for the ~1.7M images with verified labels of the boxable classes;
# docs/label_store.md has the figures and the plan for larger sets).
_base_ = ['./resnet50_openimages_bce.py']

model = dict(
    head=dict(
        ignore_unknown=False,
        pass_tristate=True,
        loss=dict(_delete_=True, type='DynamicPartialLoss', q=0.5)))
custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(type='PseudoLabelHook', init_value=0.5),
]
