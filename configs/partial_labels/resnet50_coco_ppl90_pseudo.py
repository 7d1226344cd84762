# Zhang et al.'s method on COCO 2014 PPL_0.9 (90% of the positive labels
# kept, at least one per image, no negative; Table V). As
# ./resnet50_coco_pal60_pseudo.py, with alpha / beta from P / T over all the
# batch's labels: with positive-only labels, P / T over the observed labels
# is 1, so alpha = 0 and the positive terms vanish (README, "alpha and
# beta").
_base_ = ['./resnet50_coco_pal60_pseudo.py']
train_dataloader = dict(dataset=dict(mode='ppl', keep_ratio=0.9))
model = dict(head=dict(loss=dict(balance_count='all')))
