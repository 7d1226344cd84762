# COMIC on PLT-VOC (../_base_/datasets/plt_voc.py: a long-tailed VOC 2012
# subset, 40% of its positives missing; tested on VOC 2007 test): Table 1's
# COMIC row, the settings of resnet50_plt_coco_comic.py with 20 classes.
_base_ = [
    '../_base_/models/comic_resnet50.py',
    '../_base_/datasets/plt_voc.py',
    '../_base_/schedules/comic_adam_40e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    head=dict(num_classes=_base_.num_classes),
    data_preprocessor=_base_.data_preprocessor)
train_dataloader = dict(batch_size=32, dataset=dict(missing_as='negative'))
