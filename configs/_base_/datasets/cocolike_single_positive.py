# BalanceMix's "Missing" setting (single positive labels, Kim et al. 2022)
# on the embedded COCO-shaped digits (docs/cocolike.md): in each of the
# 1,500 natural training images of cocolike.py one positive label kept at
# random, every other label unknown (-1; missing_as='negative' gives the
# "assume negative" encoding BalanceMix trains on). Every image holds a
# positive, so none is dropped. Groups and metrics as cocolike_noisy.py
# (BalanceMix's thresholds scaled, (13, 100), from the clean counts).
_base_ = ['./cocolike_noisy.py']

noise = dict(type='NoisyLabelDataset', noise_type='single_positive', seed=0)
train_dataset = dict(_delete_=True, dataset=_base_.train_dataset.dataset,
                     **noise)
train_dataloader = dict(dataset=train_dataset)
