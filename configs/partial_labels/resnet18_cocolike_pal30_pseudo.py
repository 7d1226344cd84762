# Zhang et al.'s method on PAL_0.3 of the embedded COCO-shaped digits (30%
# of all the training labels kept; ../_base_/datasets/cocolike_pal30.py). As
# ./resnet18_cocolike_pal60_pseudo.py.
_base_ = ['./resnet18_cocolike_pal60_pseudo.py']
train_dataloader = dict(dataset=dict(keep_ratio=0.3))
