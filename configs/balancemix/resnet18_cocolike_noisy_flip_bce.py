# resnet18_cocolike_noisy_bce.py in the "Rand. Flip" setting: every label,
# positive or negative, flipped with probability 0.4.
_base_ = ['./resnet18_cocolike_noisy_bce.py']

train_dataloader = dict(dataset=dict(noise_type='flip', rho=0.4))
