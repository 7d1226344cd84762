# The GMM label refinement of the noisy digits configs (BalanceMix Eq. 6-10,
# LabelRefinementHook): 18 warm-up epochs of the 90-epoch schedule (1/5, as
# COCO's 10/50), tau 0.975, views made by RandAugment in the pass.
# After the warm-up, one pass over the training set per epoch (losses of
# the plain images and two views of the same loaded images), the 2K GMMs,
# and the refined targets / weights written to the label store.
refinement = dict(
    type='LabelRefinementHook',
    warmup_epochs=18,
    tau=0.975,
    # mmpretrain's 'simple_increasing' policies (AutoContrast, Equalize,
    # Rotate, Shear): the timm set's Invert / Solarize turn the black digit
    # canvases white. FastAutoContrast / FastEqualize make the same images
    # as mmpretrain's (one bincount for the three channels' histograms).
    pass_pipeline=[dict(type='PackMultiLabelInputs')],
    view_transforms=[
        dict(type='RandAugment',
             policies=[
                 dict(type='FastAutoContrast'),
                 dict(type='FastEqualize'),
                 dict(type='Rotate', magnitude_range=(0, 30)),
                 dict(type='Shear', magnitude_range=(0, 0.3),
                      direction='horizontal'),
                 dict(type='Shear', magnitude_range=(0, 0.3),
                      direction='vertical'),
             ],
             num_policies=2, magnitude_level=9, magnitude_std=0.5,
             hparams=dict(pad_val=0)),
    ],
    pass_batch_size=256,
    # the 1238 small canvases load and augment in about 1 s in the main
    # process; with both cores busy (two runs side by side) a persistent
    # worker adds the transfers and no CPU (7.4 s against 8.3 s a pass)
    pass_num_workers=0,
)
