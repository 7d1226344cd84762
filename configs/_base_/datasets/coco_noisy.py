# BalanceMix (Song et al. 2024, §Evaluation) "Mislabel" setting on MS-COCO:
# the COCO 2017 train labels of coco_multilabel.py with 40% class-dependent
# mislabelling, Eq. (11): a positive of class i moves to class j with
# probability rho * N_j / (N - N_i) (N_i positive labels of class i, N of
# all classes), never onto a class already positive in the image; see
# NoisyLabelDataset. Tested on the clean COCO 2017 val.
# The paper sweeps rho in {0.2, 0.4}: change `noise.rho`. The clean labels
# travel beside the noisy ones (gt_tristate_clean) for analyses only.
# To train from a written file instead (tools/dataset_converters/
# make_noisy_labels.py), use a TriStateMultiLabelDataset on it.
_base_ = ['./coco_multilabel.py']

noise = dict(type='NoisyLabelDataset', noise_type='mislabel', rho=0.4, seed=0)

train_dataset = dict(_delete_=True, dataset={{_base_.train_dataset}}, **noise)
train_dataloader = dict(dataset=train_dataset)

# Class groups of BalanceMix: many > 10000, medium 1000-10000, few < 1000
# positive labels. The counts come from the CLEAN train labels (the base
# evaluator's unwrapped CocoMultiLabelDataset): the clean counts define the
# long tail, while the noisy counts depend on the noise type and rate
# (random flipping at 40% gives every class ~47k positives) and would move
# classes between groups from one setting to the next.
val_evaluator = dict(group_thresholds=(1000, 10000))
test_evaluator = val_evaluator
