# Zhang et al.'s method on COCO 2014 SPL (one positive label per image,
# everything else unknown; Table VI: 72.0 mAP). As
# ./resnet50_coco_pal60_pseudo.py, with alpha / beta from P / T over all
# the batch's labels (see ./resnet50_coco_ppl60_pseudo.py).
_base_ = ['./resnet50_coco_pal60_pseudo.py']
train_dataloader = dict(dataset=dict(mode='spl', keep_ratio=None))
model = dict(head=dict(loss=dict(balance_count='all')))
