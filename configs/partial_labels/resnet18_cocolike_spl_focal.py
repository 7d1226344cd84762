# Focal over AN on SPL of the embedded COCO-shaped digits (one known positive
# per image, every other label unknown; ../_base_/datasets/cocolike_spl.py).
# As ./resnet18_cocolike_pal60_focal.py.
_base_ = ['./resnet18_cocolike_pal60_focal.py']
train_dataloader = dict(dataset=dict(mode='spl', keep_ratio=None))
