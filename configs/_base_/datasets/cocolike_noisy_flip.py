# BalanceMix's "Rand. Flip" setting on the embedded COCO-shaped digits
# (docs/cocolike.md): every label of the 1,500 natural training images of
# cocolike.py, positive or negative, flipped independently with probability
# 0.4 (20% via --cfg-options train_dataloader.dataset.rho=0.2); see
# NoisyLabelDataset. With 80 classes and ~2.9 positives per image this
# swamps the positives of all but the most frequent classes, as on COCO.
# Groups and metrics as cocolike_noisy.py (BalanceMix's thresholds scaled,
# (13, 100), from the clean counts). Tested on the clean test split.
_base_ = ['./cocolike_noisy.py']

noise = dict(type='NoisyLabelDataset', noise_type='flip', rho=0.4, seed=0)
train_dataset = dict(_delete_=True, dataset=_base_.train_dataset.dataset,
                     **noise)
train_dataloader = dict(dataset=train_dataset)
