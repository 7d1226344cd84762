# BalanceMix (Song et al. 2024, §Evaluation) "Missing" setting on PASCAL
# VOC: the single positive label setup of Kim et al. (2022): in each VOC
# 2007 trainval image one positive label kept at random, every other label
# unknown (-1); images without any positive label (only difficult objects)
# are dropped (NoisyLabelDataset empty_images='drop'). Tested on the clean
# VOC 2007 test.
_base_ = ['./voc_multilabel.py']

noise = dict(type='NoisyLabelDataset', noise_type='single_positive', seed=0)

train_dataset = dict(_delete_=True, dataset={{_base_.train_dataset}}, **noise)
train_dataloader = dict(dataset=train_dataset)

# BalanceMix groups (many > 10000, medium 1000-10000, few < 1000) from the
# CLEAN train counts (the base evaluator's unwrapped VOC), the same groups
# as the mislabel and flip settings.
val_evaluator = dict(group_thresholds=(1000, 10000))
test_evaluator = val_evaluator
