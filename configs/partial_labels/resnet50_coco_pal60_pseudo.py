# Zhang et al.'s method on COCO 2014 PAL_0.6 (Table IV: 76.3 mAP): pseudo
# labels for the unknown labels (0.5 at the start, then the model's
# predictions from each epoch's training forward passes; PseudoLabelHook,
# Eq. 5) and the dynamic loss (DynamicPartialLoss, Eq. 8-12: batch
# alpha/beta with gamma 0.05, d with m = 3, the all-negative penalty p = 2,
# q = 50% of the unknown labels per step). Recipe of
# ./resnet50_coco_pal60_an.py. Pseudo-label history per epoch:
# <work_dir>/<timestamp>/pseudo_labels.json.
_base_ = ['./resnet50_coco_pal60_an.py']

model = dict(
    head=dict(
        ignore_unknown=False,  # unknown labels keep their weight ...
        pass_tristate=True,  # ... and the loss tells them apart
        loss=dict(
            _delete_=True,
            type='DynamicPartialLoss',
            gamma=0.05,
            m=3,
            penalty=2.,
            penalty_threshold=0.1,
            q=0.5)))
custom_hooks = [
    # the store holds the targets: observed labels and pseudo labels
    dict(type='LabelStoreHook'),
    dict(type='PseudoLabelHook', init_value=0.5),
]
