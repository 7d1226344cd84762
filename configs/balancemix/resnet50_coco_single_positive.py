# BalanceMix on MS-COCO, "Missing" setting (Song et al. 2024, §Evaluation;
# the single positive label setup of Kim et al. 2022): one positive label
# kept per image, every other label read as negative ("assume negative",
# NoisyLabelDataset missing_as='negative'), so the hidden positives are
# false negatives for the label-wise management to find; re-labelling
# threshold tau = 0.55 (the paper's value for single positive labels).
_base_ = ['./resnet50_coco_noisy.py']

train_dataloader = dict(
    dataset=dict(noise_type='single_positive', missing_as='negative'))
custom_hooks = [
    dict(type='LabelStoreHook'),
    dict(_base_.refinement, tau=0.55),
    dict(type='BalanceMixHook'),
]
