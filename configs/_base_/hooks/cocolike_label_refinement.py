# The GMM label refinement of the noisy COCO-shaped digits configs: the
# digits one (./digits_label_refinement.py: tau 0.975, a pass per epoch over
# the plain images and two RandAugment views in the main process) with 12
# warm-up epochs of the 60-epoch schedule (1/5, as COCO's 10/50) and the
# evaluators' class groups for the quality report (docs/cocolike.md).
_base_ = ['./digits_label_refinement.py']

refinement = dict(warmup_epochs=12, group_thresholds=(13, 100))
