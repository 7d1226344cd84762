# BalanceMix (Song et al. 2024, §Evaluation) "Missing" setting on MS-COCO:
# the single positive label setup of Kim et al. (2022): in each COCO 2017
# train image one positive label kept at random, every other label unknown
# (-1); images without any positive label are dropped (NoisyLabelDataset
# empty_images='drop'). Losses that assume unknown = negative ("AN") must
# say so themselves; the labels stay unknown here. Tested on the clean
# COCO 2017 val.
_base_ = ['./coco_multilabel.py']

noise = dict(type='NoisyLabelDataset', noise_type='single_positive', seed=0)

train_dataset = dict(_delete_=True, dataset={{_base_.train_dataset}}, **noise)
train_dataloader = dict(dataset=train_dataset)

# BalanceMix groups (many > 10000, medium 1000-10000, few < 1000) from the
# CLEAN train counts (the base evaluator's unwrapped train set), the same
# groups as the mislabel and flip settings.
val_evaluator = dict(group_thresholds=(1000, 10000))
test_evaluator = val_evaluator
