# Zhang et al.'s method on PAL_0.6 of the embedded COCO-shaped digits:
# pseudo labels for the unknown labels (PseudoLabelHook, Eq. 5: 0.5, then
# each epoch's training predictions) and the dynamic loss
# (DynamicPartialLoss, Eq. 8-12: gamma 0.05, m 3, p 2, q 50%). Recipe of
# ./resnet18_cocolike_pal60_an.py. Pseudo-label history (mean, accuracy
# against the hidden labels per class and class group):
# <work_dir>/<timestamp>/pseudo_labels.json.
_base_ = ['./resnet18_cocolike_pal60_an.py']

model = dict(
    head=dict(
        ignore_unknown=False,
        pass_tristate=True,
        loss=dict(
            _delete_=True,
            type='DynamicPartialLoss',
            gamma=0.05,
            m=3,
            penalty=2.,
            penalty_threshold=0.1,
            q=0.5)))
custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(type='PseudoLabelHook', init_value=0.5),
]
