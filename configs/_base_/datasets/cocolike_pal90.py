# PAL_0.9 on the embedded COCO-shaped digits: 90% of all known training
# labels kept (see cocolike_partial.py).
_base_ = ['./cocolike_partial.py']
train_dataloader = dict(dataset=dict(keep_ratio=0.9))
