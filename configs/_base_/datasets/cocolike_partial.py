# Partially annotated labels (Zhang et al., "Towards Imbalanced Large Scale
# Multi-label Classification with Partially Annotated Labels", §V-A) on the
# embedded COCO-shaped digits (docs/cocolike.md): PAL_0.6, a fraction 0.6
# of ALL the known labels of the 1,500 natural training images (positives
# and negatives alike) kept, the rest unknown (-1). The paper's settings:
#   PAL_0.3 / 0.6 / 0.9   cocolike_pal30.py / this file / cocolike_pal90.py
#   PPL (positives only)  cocolike_ppl60.py, or mode='ppl'
#   SPL (one positive)    cocolike_spl.py
# or override this file: --cfg-options train_dataloader.dataset.keep_ratio=
# 0.3 (train_dataloader.dataset.mode=ppl for PPL). MissingLabelDataset's
# docstring has the exact definitions. The test split keeps its full labels.
_base_ = ['./cocolike.py']

keep_ratio = 0.6
train_dataset = dict(
    _delete_=True,
    type='MissingLabelDataset',
    mode='pal',
    keep_ratio=keep_ratio,
    seed=0,
    dataset=_base_.train_dataset)  # the pipeline stays in the inner dataset
train_dataloader = dict(dataset=train_dataset)
# Zhang et al. report no class groups; the evaluators of cocolike.py (DB /
# COMIC's many > 100, medium 20-100, few < 20 on the full training labels:
# 13 / 33 / 34 classes, seed 0) are kept.
