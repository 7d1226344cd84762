# Composition (not in the paper): Zhang et al.'s method with PLM's masks
# (Duarte et al., ../plm/README.md) on PAL_0.6 of the embedded COCO-shaped
# digits. PLMHook masks observed labels towards a per-class target ratio
# (the paper's COCO settings: lambda 0.01, ratios clipped to [0, 1]); its
# masks multiply into the head's label_weight, which DynamicPartialLoss
# multiplies into each term (unknown labels are never masked).
_base_ = ['./resnet18_cocolike_pal60_pseudo.py']
custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(type='PseudoLabelHook', init_value=0.5),
    dict(type='PLMHook', lam=0.01, num_bins=10, init_ratio='dataset',
         clip=(0, 1)),
]
