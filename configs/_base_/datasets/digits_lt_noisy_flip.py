# Long-tailed digits with random flipping, the embedded analogue of
# BalanceMix's "Rand. Flip" setting (Song et al. 2024, §Evaluation): every
# label of the long-tailed train split of digits_lt.py, positive or
# negative, flipped independently with probability 0.4; see
# NoisyLabelDataset. Tested on the clean near-balanced test split.
_base_ = ['./digits_lt.py']

noise = dict(type='NoisyLabelDataset', noise_type='flip', rho=0.4, seed=0)

train_dataset = dict(_delete_=True, dataset={{_base_.train_dataset}}, **noise)
train_dataloader = dict(dataset=train_dataset)

# The evaluators of digits_lt.py are kept: DB's groups (many > 100, medium
# 20-100, few < 20) from the CLEAN long-tailed train split. The flipped
# counts (~0.4 * 1238 = 495 positives for every class) have no long tail.
