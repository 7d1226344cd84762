# PLM (BCE) on MS-COCO, the paper's §3.1 settings: ResNet-50, SGD momentum
# 0.9, initial lr 0.4 for a total batch of 200, linear warm-up over the
# first 5 epochs, decayed by 0.1 at epochs 30, 60 and 80 of 90 (the
# MultiMNIST procedure, "similar training procedure" on MSCOCO);
# initial ratio = dataset ratio, lambda 0.01, ratios clipped to [0, 1].
# Weight decay is not given by the paper: the base config's 1e-4 is kept,
# as are its ImageNet-pretrained weights and 224 px pipeline.
_base_ = ['../baseline/resnet50_coco_bce.py']

# 8 GPUs x 25 = 200 images per step; `--auto-scale-lr` rescales lr 0.4
# for another total batch.
train_dataloader = dict(batch_size=25)
auto_scale_lr = dict(base_batch_size=200)
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.4, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 80],
         gamma=0.1),
]
train_cfg = dict(by_epoch=True, max_epochs=90, val_interval=5)

custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(type='PLMHook', lam=0.01, num_bins=10, init_ratio='dataset',
         clip=(0, 1)),
]

# Metrics: mAP (overall and many / medium / few, the base config's
# LongTailMultiLabelMetric) and the PLM paper's per-class precision / recall
# / F1 averaged over all classes and over the K least frequent training
# classes, K = 10 (keys multi-label/*_least) and K = 20 (a second
# MultiLabelPRFMetric, which takes one K, with prefix least20:
# least20/*_least), plus the 0-1 exact match. Each metric reads the
# training class counts from COCO train2017 once, at the first evaluation.
coco_train_counts = dict(
    type='CocoMultiLabelDataset',
    data_root=_base_.data_root,
    ann_file='annotations/instances_train2017.json',
    data_prefix=dict(img_path='train2017/'))
val_evaluator = [
    dict(
        type='LongTailMultiLabelMetric',
        train_dataset=coco_train_counts,
        group_thresholds=(20, 100)),
    dict(
        type='MultiLabelPRFMetric',
        train_dataset=coco_train_counts,
        num_least_frequent=10),
    dict(
        type='MultiLabelPRFMetric',
        train_dataset=coco_train_counts,
        num_least_frequent=20,
        prefix='least20'),
]
test_evaluator = val_evaluator
