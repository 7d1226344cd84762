# Zhang et al.'s method on SPL of the embedded COCO-shaped digits (one
# known positive per image, every other label unknown;
# ../_base_/datasets/cocolike_spl.py).
# As ./resnet18_cocolike_pal60_pseudo.py, with alpha / beta from P / T over
# all the batch's labels: with positive-only labels, P / T over the
# observed labels is 1, so alpha = 0 and the positive terms vanish (README,
# "alpha and beta").
_base_ = ['./resnet18_cocolike_pal60_pseudo.py']
train_dataloader = dict(dataset=dict(mode='spl', keep_ratio=None))
model = dict(head=dict(loss=dict(balance_count='all')))
