# The GMM label refinement of the noisy COCO-shaped digits configs
# (BalanceMix Eq. 6-10, LabelRefinementHook): 12 warm-up epochs of the
# 60-epoch schedule (1/5, as COCO's 10/50), tau 0.975; after the warm-up one
# pass over the training set per epoch (losses of the plain images and two
# RandAugment views of the same loaded images, in the main process: the
# small canvases load faster there than a fresh worker starts), the 2K
# GMMs, and the refined targets / weights written to the label store. Class
# groups of the quality report as the evaluators' (docs/cocolike.md).
refinement = dict(
    type='LabelRefinementHook',
    warmup_epochs=12,
    tau=0.975,
    pass_pipeline=[dict(type='PackMultiLabelInputs')],
    view_transforms=[
        dict(type='RandAugment', policies='simple_increasing',
             num_policies=2, magnitude_level=9, magnitude_std=0.5,
             hparams=dict(pad_val=0)),
    ],
    pass_batch_size=256,
    pass_num_workers=0,
    group_thresholds=(13, 100),
)
