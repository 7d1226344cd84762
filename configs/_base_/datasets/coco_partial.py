# COCO 2017 with partially annotated labels (PAL, Zhang et al., "Towards
# Imbalanced Large Scale Multi-label Classification with Partially Annotated
# Labels", §V-A): a fraction of ALL the known labels of the training set,
# positives and negatives alike, is kept; the rest becomes unknown (-1).
# The paper reports PAL_0.3 / 0.6 / 0.9 and runs its ablation (Table VII) at
# PAL_0.6, the setting where it matches full-label BCE on COCO: 0.6 here.
# Change `keep_ratio` (or mode='ppl' / 'spl') for the other settings; the
# exact definitions are in MissingLabelDataset's docstring. The validation
# set keeps its full labels.
_base_ = ['./coco_multilabel.py']

keep_ratio = 0.6
train_dataset = dict(
    _delete_=True,
    type='MissingLabelDataset',
    mode='pal',
    keep_ratio=keep_ratio,
    seed=0,
    dataset=_base_.train_dataset)  # the pipeline stays in the inner dataset
train_dataloader = dict(dataset=train_dataset)
