# Zhang et al.'s method on PPL_0.6 of the embedded COCO-shaped digits (60%
# of the positive labels kept, at least one per image, no negative;
# ../_base_/datasets/cocolike_ppl60.py): the "Our method" row of the PPL
# ablation (Table VII). As ./resnet18_cocolike_pal60_pseudo.py, with alpha /
# beta from P / T over all the batch's labels (positive-only labels: over
# the observed labels P / T = 1 and alpha = 0; README, "alpha and beta").
_base_ = ['./resnet18_cocolike_pal60_pseudo.py']
train_dataloader = dict(dataset=dict(mode='ppl', keep_ratio=0.6))
model = dict(head=dict(loss=dict(balance_count='all')))
