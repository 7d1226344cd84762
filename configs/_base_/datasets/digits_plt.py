# PLT on the embedded digits: a long-tailed subset (LongTailSubsetDataset)
# of a balanced LongTailMultiDigits training set (imbalance_ratio=1, 1000
# images per class, 1-2 digits per image), with 40% of its positives
# missing (unknown, -1), negatives kept -- the PLT-COCO / PLT-VOC recipe of
# COMIC §4.1 on a dataset that needs no download. With seed 0 the subset has
# 749 images, class sizes 509 ... 8 (3 many, 3 medium, 4 few classes); with
# up to 3 digits per image the co-occurrences would shrink it to 352 images
# (head 281). The test set and pipelines are those of digits_lt.py.
_base_ = ['./digits_lt.py']

missing_rate = 0.4
balanced_digits = dict(
    type='LongTailMultiDigits',
    split='train',
    imbalance_ratio=1,
    max_digits=2,
    seed=0)
long_tail_train_dataset = dict(
    type='LongTailSubsetDataset',
    dataset=dict(**balanced_digits, pipeline=_base_.train_pipeline),
    alpha=6,
    max_size=800,
    min_size=8,
    seed=0)
train_dataset = dict(
    _delete_=True,
    type='MissingLabelDataset',
    mode='missing_positives',
    missing_rate=missing_rate,
    seed=0,
    dataset=long_tail_train_dataset)
train_dataloader = dict(dataset=train_dataset)

# Groups many > 100, medium 20-100, few < 20 from the long-tailed training
# subset's class sizes (its full labels).
_lt_counts = dict(
    type='LongTailSubsetDataset',
    dataset=balanced_digits,
    alpha=6,
    max_size=800,
    min_size=8,
    seed=0)
val_evaluator = [
    dict(
        type='LongTailMultiLabelMetric',
        train_dataset=_lt_counts,
        group_thresholds=(20, 100)),
    dict(
        type='MultiLabelPRFMetric',
        train_dataset=_lt_counts,
        num_least_frequent=3),
]
test_evaluator = val_evaluator
