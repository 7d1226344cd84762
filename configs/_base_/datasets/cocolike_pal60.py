# PAL_0.6 on the embedded COCO-shaped digits: 60% of all known training
# labels kept (cocolike_partial.py is this setting; this file names it like
# cocolike_pal30.py and cocolike_pal90.py).
_base_ = ['./cocolike_partial.py']
train_dataloader = dict(dataset=dict(keep_ratio=0.6))
