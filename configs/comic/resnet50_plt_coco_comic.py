# COMIC (Zhang et al., ICCV 2023) on PLT-COCO (../_base_/datasets/
# plt_coco.py: a long-tailed COCO subset, 40% of its positives missing):
# Table 1's COMIC row. Reflective Label Corrector (Eq. 2-3, tau 0.7, running
# class mean, dynamic distribution), Multi-Focal Modifier loss (Eq. 4-6,
# the authors' defaults) and Head-Tail Balancer (Eq. 7-11) with one
# ImageNet ResNet-50 per branch (the paper), all three on the same batches
# (../_base_/models/comic_resnet50.py); inference on the balanced branch
# (model.head.predict_branch='head' / 'tail' for Table 1's head / tail
# rows). §4.1: Adam, batch 32, 40 epochs, 224 px
# (../_base_/schedules/comic_adam_40e.py).
#
# Missing positives are written as 0 like the paper's files (the paper's
# "0 = unknown") and the corrector may turn any label that is not an
# observed positive into a positive; see configs/comic/README.md.
_base_ = [
    '../_base_/models/comic_resnet50.py',
    '../_base_/datasets/plt_coco.py',
    '../_base_/schedules/comic_adam_40e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    head=dict(num_classes=_base_.num_classes),
    data_preprocessor=_base_.data_preprocessor)
train_dataloader = dict(batch_size=32, dataset=dict(missing_as='negative'))
