# PLT-VOC (COMIC, Zhang et al. ICCV 2023, §4.1): a long-tailed subset of
# PASCAL VOC 2012 trainval (2,569 images, class sizes 1,117 ... 7 in the
# paper; the authors' released image ids are 2008_* ... 2011_* VOC2012 ids)
# with 40% of its positive labels missing; evaluated on VOC 2007 test
# (4,952 images, voc_multilabel.py's test set).
# Here: MissingLabelDataset(mode='missing_positives') over a
# LongTailSubsetDataset; missing positives are unknown (-1), negatives kept.
# COMIC's released id list (dataset/voc/voc/img_id.txt of the authors'
# repository) gives the paper's exact subset: pass it as `indices_file` (it
# replaces alpha / max_size / min_size; also in val_evaluator's
# train_dataset).
_base_ = ['./voc_multilabel.py']

missing_rate = 0.4
voc2012_root = 'data/VOCdevkit/VOC2012'
long_tail_train_dataset = dict(
    type='LongTailSubsetDataset',
    dataset=dict(
        type='VOC',
        data_root=voc2012_root,
        split='trainval',
        pipeline=_base_.train_pipeline),
    alpha=6,
    max_size=1117,
    min_size=7,
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
val_evaluator = dict(
    train_dataset=dict(
        _delete_=True,
        type='LongTailSubsetDataset',
        dataset=dict(type='VOC', data_root=voc2012_root, split='trainval'),
        alpha=6,
        max_size=1117,
        min_size=7,
        seed=0),
    group_thresholds=(20, 100))
test_evaluator = val_evaluator
