# BCE + CB baseline of the PLM paper (Table 1, "BCE+CB"), Eq. (8): one
# weight per class, w_j = 1 / effective number of samples of class j
# (Cui et al.). The CB preset of DistributionBalancedLoss (loss_weight 10)
# with `mode='by_class'` (Eq. 8 weighs each class, not each image) and
# beta 0.99 (with the DB default 0.9 every class of >= 30 images would get
# the same weight). Plain sampler, no PLM.
_base_ = ['../baseline/resnet18_digits_lt_bce.py']

model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='DistributionBalancedLoss',
            preset='CB',
            cb_param=dict(beta=0.99, mode='by_class'),
            use_avg_factor=True)))
# The loss reads n_k and N from the training set when training starts.
custom_hooks = [dict(type='ClassStatisticsHook')]
