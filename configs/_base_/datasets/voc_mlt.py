# VOC-MLT (Wu et al. 2020, DB loss, §4.1 and appendix A.1): a long-tailed
# subset of VOC 2012 trainval built head-to-tail on a Pareto curve, alpha=6,
# head 800 images (the paper's tail of 4 is derived from the curve); the
# paper reports 1,142 images, classes 775 -> 4, 6 / 6 / 8 many / medium /
# few classes. Tested on VOC2007 test (4,952 images), as in the paper.
# Difficult-only objects are unknown labels (-1) in training and testing.
# Our draw is not the authors' draw: to use their published list, set
#   voc_mlt_subset['indices_file'] = 'data/VOCdevkit/longtail2012/img_id.txt'
# (VOC image ids such as 2008_000023, matched to the image file names).
# (DB-loss settings differ on VOC-MLT: mu=0.3, lambda=5; a loss matter.)
# Expected layout: data/VOCdevkit/VOC2012/{JPEGImages,Annotations,ImageSets}
# beside the VOC2007 tree of voc_multilabel.py.
_base_ = ['./voc_multilabel.py']

voc2012_data_root = 'data/VOCdevkit/VOC2012'
voc_train_source = dict(
    type='VOC', data_root=voc2012_data_root, split='trainval')
voc_mlt_subset = dict(
    type='LongTailSubsetDataset',
    alpha=6,
    max_size=800,
    rank_by='resample_prob',
    group_thresholds=(20, 100),
    seed=0)

train_dataset = dict(
    _delete_=True,
    dataset=dict(voc_train_source, pipeline={{_base_.train_pipeline}}),
    **voc_mlt_subset)
train_dataloader = dict(dataset=train_dataset)

val_evaluator = dict(
    train_dataset=dict(
        _delete_=True, dataset=voc_train_source, **voc_mlt_subset))
test_evaluator = val_evaluator
