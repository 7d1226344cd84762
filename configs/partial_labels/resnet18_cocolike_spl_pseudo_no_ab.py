# Table VII ablation on SPL of the embedded COCO-shaped digits (not a column
# of the paper's Table VII): the method without alpha and beta (Eq. 8):
# alpha = beta = 1.
_base_ = ['./resnet18_cocolike_spl_pseudo.py']
model = dict(head=dict(loss=dict(use_balance=False)))
