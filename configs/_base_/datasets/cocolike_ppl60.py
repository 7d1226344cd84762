# PPL_0.6 on the embedded COCO-shaped digits (Zhang et al. §V-A): 60% of the
# known positives kept (at least one per image), every negative unknown
# (see cocolike_partial.py and MissingLabelDataset).
_base_ = ['./cocolike_partial.py']
train_dataloader = dict(dataset=dict(mode='ppl', keep_ratio=0.6))
