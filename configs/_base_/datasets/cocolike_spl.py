# SPL on the embedded COCO-shaped digits (Zhang et al. §V-A, Cole et al.'s
# construction): one known positive per image kept, every other label
# unknown (see cocolike_partial.py and MissingLabelDataset).
_base_ = ['./cocolike_partial.py']
train_dataloader = dict(
    dataset=dict(mode='spl', keep_ratio=None))
