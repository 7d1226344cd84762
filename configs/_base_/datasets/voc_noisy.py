# BalanceMix (Song et al. 2024, §Evaluation) "Mislabel" setting on PASCAL
# VOC: the VOC 2007 trainval labels of voc_multilabel.py with 40%
# class-dependent mislabelling, Eq. (11): a positive of class i moves to
# class j with probability rho * N_j / (N - N_i) (N_i positive labels of
# class i, N of all classes), never onto a class already positive (or
# unknown) in the image; see NoisyLabelDataset. Difficult-only objects are
# unknown labels (-1) and stay unknown. Tested on the clean VOC 2007 test.
# The paper sweeps rho in {0.2, 0.4}: change `noise.rho`.
_base_ = ['./voc_multilabel.py']

noise = dict(type='NoisyLabelDataset', noise_type='mislabel', rho=0.4, seed=0)

train_dataset = dict(_delete_=True, dataset={{_base_.train_dataset}}, **noise)
train_dataloader = dict(dataset=train_dataset)

# Class groups of BalanceMix: many > 10000, medium 1000-10000, few < 1000
# positive labels (on VOC 2007 trainval: 'person' medium, the rest few, as
# the paper's VOC columns "Medium / Few"). The counts come from the CLEAN
# train labels (the base evaluator's unwrapped VOC): the clean counts define
# the long tail; noisy counts depend on the noise type and rate and would
# move classes between groups from one setting to the next.
val_evaluator = dict(group_thresholds=(1000, 10000))
test_evaluator = val_evaluator
