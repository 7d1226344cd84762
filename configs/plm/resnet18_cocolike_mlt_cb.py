# BCE + CB row of the PLM paper's Table 1 on CocoLike-MLT, Eq. (8): one
# weight per class, 1 / effective number of samples (Cui et al.), beta 0.99
# (as on the digits: with the DB default 0.9 every class of >= 30 images
# would get the same weight; here 6 ... 932 images span a 17x weight
# range), normalised so that the class weights sum to K. Plain sampler, no
# PLM.
_base_ = ['./resnet18_cocolike_mlt_bce.py']

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
