# BCE row of the PLM paper's Table 1 (Duarte et al.) on CocoLike-MLT (the
# embedded COCO-shaped digits, ../_base_/datasets/cocolike_mlt.py,
# docs/cocolike.md): the DB BCE baseline with the PLM paper's metrics. The
# PLM rows on this dataset inherit from this file.
#
# Metrics (appendix A): mAP overall and per group, per-class precision /
# recall / F1 averaged over all classes and over the K least frequent
# training classes for K = 3 (keys multi-label/*_least) and K = 5 (a second
# MultiLabelPRFMetric, which takes one K, with prefix least5:
# least5/*_least), and the 0-1 exact match (multi-label/exact_match).
_base_ = ['../db_loss/resnet18_cocolike_mlt_bce.py']

val_evaluator = [
    dict(
        type='LongTailMultiLabelMetric',
        train_dataset=_base_.metric_train_dataset,
        group_thresholds=_base_.group_thresholds),
    dict(
        type='MultiLabelPRFMetric',
        train_dataset=_base_.metric_train_dataset,
        num_least_frequent=3),
    dict(
        type='MultiLabelPRFMetric',
        train_dataset=_base_.metric_train_dataset,
        num_least_frequent=5,
        prefix='least5'),
]
test_evaluator = val_evaluator
