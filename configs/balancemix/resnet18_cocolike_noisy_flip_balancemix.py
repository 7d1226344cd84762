# resnet18_cocolike_noisy_balancemix.py in the "Rand. Flip" setting: every label,
# positive or negative, flipped with probability 0.4.
_base_ = ['./resnet18_cocolike_noisy_balancemix.py']

train_dataloader = dict(dataset=dict(noise_type='flip', rho=0.4))
