# Noisy long-tailed digits, the embedded analogue of BalanceMix's "Mislabel"
# setting (Song et al. 2024, §Evaluation): the long-tailed train split of
# digits_lt.py (1238 images, class sizes 1000 -> 10) with 40% mislabelling,
# Eq. (11): a positive of class i moves to class j with probability
# rho * N_j / (N - N_i) (N_i positive labels of class i, N = 2480 of all
# classes), never onto a class already positive in the image; see
# NoisyLabelDataset. Digit '0' is in 81% of the images, so the moves into it
# cannot reach Eq. (11) (e.g. 1 -> 0: 0.21 requested, at most 0.09
# possible); the rest of those rows take up the share, the overall rate
# stays 0.4, and report()['mislabel'] lists the cells.
# Tested on the clean near-balanced test split.
_base_ = ['./digits_lt.py']

noise = dict(type='NoisyLabelDataset', noise_type='mislabel', rho=0.4, seed=0)

train_dataset = dict(_delete_=True, dataset={{_base_.train_dataset}}, **noise)
train_dataloader = dict(dataset=train_dataset)

# The evaluators of digits_lt.py are kept: DB's groups (many > 100, medium
# 20-100, few < 20) from the CLEAN long-tailed train split (their
# train_dataset is the unwrapped LongTailMultiDigits): the clean counts
# define the long tail; noisy counts depend on the noise type and rate.
