# Long-tailed digits with single positive labels, the embedded analogue of
# BalanceMix's "Missing" setting (Song et al. 2024, §Evaluation; Kim et al.
# 2022): in each image of the long-tailed train split of digits_lt.py one
# positive label kept at random, every other label unknown (-1). Every
# digits image holds at least one digit, so none is dropped. Tested on the
# clean near-balanced test split.
_base_ = ['./digits_lt.py']

noise = dict(type='NoisyLabelDataset', noise_type='single_positive', seed=0)

train_dataset = dict(_delete_=True, dataset={{_base_.train_dataset}}, **noise)
train_dataloader = dict(dataset=train_dataset)

# The evaluators of digits_lt.py are kept: DB's groups (many > 100, medium
# 20-100, few < 20) from the CLEAN long-tailed train split.
