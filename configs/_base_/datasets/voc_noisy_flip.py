# BalanceMix (Song et al. 2024, §Evaluation) "Rand. Flip" setting on PASCAL
# VOC: every known label of VOC 2007 trainval (voc_multilabel.py), positive
# or negative, flipped independently with probability rho = 0.4 (the paper
# sweeps {0.2, 0.4}: change `noise.rho`); difficult-only objects stay
# unknown. See NoisyLabelDataset. Tested on the clean VOC 2007 test.
_base_ = ['./voc_multilabel.py']

noise = dict(type='NoisyLabelDataset', noise_type='flip', rho=0.4, seed=0)

train_dataset = dict(_delete_=True, dataset={{_base_.train_dataset}}, **noise)
train_dataloader = dict(dataset=train_dataset)

# BalanceMix groups (many > 10000, medium 1000-10000, few < 1000) from the
# CLEAN train counts (the base evaluator's unwrapped VOC): flipped counts
# (~0.4 * 5011 positives for every class) have no long tail left.
val_evaluator = dict(group_thresholds=(1000, 10000))
test_evaluator = val_evaluator
