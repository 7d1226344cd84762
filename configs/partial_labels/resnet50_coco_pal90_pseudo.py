# Zhang et al.'s method on COCO 2014 PAL_0.9 (90% of all the training
# labels kept; Table IV). As ./resnet50_coco_pal60_pseudo.py.
_base_ = ['./resnet50_coco_pal60_pseudo.py']
train_dataloader = dict(dataset=dict(keep_ratio=0.9))
