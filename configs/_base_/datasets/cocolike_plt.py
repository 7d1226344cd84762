# PLT on the embedded COCO-shaped digits (COMIC, Zhang et al. ICCV 2023,
# §4.1: "The missing rate of PLT-COCO is 40%"): the long-tailed subset of
# cocolike_mlt.py (seed 0: 1,548 images, classes 932 -> 6) with 40% of its
# positive labels missing (unknown, -1), negatives kept; see
# MissingLabelDataset (missing_as='negative' writes them as 0, COMIC's own
# encoding). PLT-COCO itself has 2,962 images, classes 1,240 -> 6.
# Groups as cocolike_mlt.py: many > 100, medium 20-100, few < 20 images of
# the subset's full labels (15 / 26 / 39 classes, seed 0).
_base_ = ['./cocolike_mlt.py']

missing_rate = 0.4
train_dataset = dict(
    _delete_=True,
    type='MissingLabelDataset',
    mode='missing_positives',
    missing_rate=missing_rate,
    seed=0,
    dataset=_base_.train_dataset)
train_dataloader = dict(dataset=train_dataset)
