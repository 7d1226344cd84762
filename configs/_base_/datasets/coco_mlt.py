# COCO-MLT (Wu et al. 2020, DB loss, §4.1 and appendix A.1): a long-tailed
# subset of COCO 2017 train built head-to-tail on a Pareto curve, alpha=6,
# head 1200 images (the paper's tail of 6 is derived from the curve); the
# paper reports 1,909 images, classes 1,128 -> 6, 22 / 33 / 25 many /
# medium / few classes. Tested on COCO 2017 val (5,000 images).
# Our draw is not the authors' draw: to use their published image list, set
#   coco_mlt_subset['indices_file'] = 'data/coco/longtail2017/img_id.pkl'
# (a text file of COCO image ids despite its extension), or write the subset
# once with tools/dataset_converters/make_long_tail_subset.py.
_base_ = ['./coco_multilabel.py']

coco_train_source = dict(
    type='CocoMultiLabelDataset',
    data_root={{_base_.data_root}},
    ann_file='annotations/instances_train2017.json',
    data_prefix=dict(img_path='train2017/'))
coco_mlt_subset = dict(
    type='LongTailSubsetDataset',
    alpha=6,
    max_size=1200,
    rank_by='resample_prob',
    group_thresholds=(20, 100),
    seed=0)

train_dataset = dict(
    _delete_=True,
    dataset=dict(coco_train_source, pipeline={{_base_.train_pipeline}}),
    **coco_mlt_subset)
train_dataloader = dict(dataset=train_dataset)

# many / medium / few groups from the class sizes of the long-tailed
# training set (the same subset, built again without a pipeline).
val_evaluator = dict(
    train_dataset=dict(
        _delete_=True, dataset=coco_train_source, **coco_mlt_subset))
test_evaluator = val_evaluator
