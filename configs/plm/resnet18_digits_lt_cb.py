# BCE + CB baseline of the PLM paper (Table 1, "BCE+CB"), Eq. (8): one
# weight per class, w_j = 1 / effective number of samples of class j
# (Cui et al.). The CB preset of DistributionBalancedLoss
# with `mode='by_class'` (Eq. 8 weighs each class, not each image) and
# beta 0.99 (with the DB default 0.9 every class of >= 30 images would get
# the same weight), normalised as Cui et al. so that the class weights sum
# to K (so loss_weight 1, not the DB appendix's 10 for its unnormalised
# weights). Plain sampler, no PLM.
_base_ = ['../baseline/resnet18_digits_lt_bce.py']

model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='DistributionBalancedLoss',
            preset='CB',
            cb_param=dict(beta=0.99, mode='by_class', normalize=True),
            loss_weight=1.0,
            use_avg_factor=True)))
# The loss reads n_k and N from the training set when training starts.
custom_hooks = [dict(type='ClassStatisticsHook')]
