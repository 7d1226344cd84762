# "+ Minority sampler" with the positives-only score (not in the paper):
# Eq. (3) summed over the image's positive labels only. With 80 classes and
# about 3 positives per image, the printed sum is dominated by the ~77
# negatives' A(k) and the sampling stays close to uniform; this variant
# gets its own row (configs/balancemix/README.md).
_base_ = ['./resnet18_cocolike_noisy_minority.py']

train_dataloader = dict(sampler=dict(score_terms='positives'))
