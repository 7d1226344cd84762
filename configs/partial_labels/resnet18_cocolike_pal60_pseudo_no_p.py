# Table VII ablation, PAL_0.6 of the embedded COCO-shaped digits: the method
# without p (Eq. 10): p = 1.
_base_ = ['./resnet18_cocolike_pal60_pseudo.py']
model = dict(head=dict(loss=dict(use_penalty=False)))
