# PLT-COCO (COMIC, Zhang et al. ICCV 2023, §4.1): a long-tailed subset of
# COCO 2017 train (2,962 images, class sizes 1,240 ... 6 in the paper) with
# 40% of its positive labels missing; evaluated on the 5,000 val2017 images.
# Here: MissingLabelDataset(mode='missing_positives') over a
# LongTailSubsetDataset; missing positives are unknown (-1), negatives are
# kept (COMIC's own files write them as 0, see MissingLabelDataset's
# `missing_as`).
#
# The subset is drawn by LongTailSubsetDataset (Pareto profile, alpha, from
# max_size down to min_size). COMIC's released image-id list
# (dataset/coco/longtail2017/img_id.txt of the authors' repository) gives
# the paper's exact subset: pass it as `indices_file` (it replaces
# alpha / max_size / min_size; also in val_evaluator's train_dataset).
_base_ = ['./coco_multilabel.py']

missing_rate = 0.4
long_tail_train_dataset = dict(
    type='LongTailSubsetDataset',
    dataset=_base_.train_dataset,  # COCO train2017, with the train pipeline
    alpha=6,
    max_size=1240,
    min_size=6,
    seed=0)
train_dataset = dict(
    _delete_=True,
    type='MissingLabelDataset',
    mode='missing_positives',
    missing_rate=missing_rate,
    seed=0,
    dataset=long_tail_train_dataset)
train_dataloader = dict(dataset=train_dataset)

# Groups many > 100, medium 20-100, few < 20 from the class sizes of the
# long-tailed training subset (its full labels, as COMIC's class split).
val_evaluator = dict(
    train_dataset=dict(
        _delete_=True,
        type='LongTailSubsetDataset',
        dataset=dict(
            type='CocoMultiLabelDataset',
            data_root=_base_.data_root,
            ann_file='annotations/instances_train2017.json',
            data_prefix=dict(img_path='train2017/')),
        alpha=6,
        max_size=1240,
        min_size=6,
        seed=0),
    group_thresholds=(20, 100))
test_evaluator = val_evaluator
