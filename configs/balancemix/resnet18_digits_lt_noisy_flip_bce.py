# BCE on the noisy long-tailed digits, "Rand. Flip" setting: every label,
# positive or negative, flipped with probability 0.4
# (../_base_/datasets/digits_lt_noisy_flip.py).
_base_ = ['./resnet18_digits_lt_noisy_bce.py']

train_dataloader = dict(dataset=dict(noise_type='flip', rho=0.4))
