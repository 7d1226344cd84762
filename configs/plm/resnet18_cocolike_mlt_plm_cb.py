# PLM on the class-balanced loss (BCE + CB, Eq. 8; see
# resnet18_cocolike_mlt_cb.py) on CocoLike-MLT: PLM multiplies its masks
# into the per-label weights of any loss. ClassStatisticsHook gives the CB
# weights the training class counts.
_base_ = ['./resnet18_cocolike_mlt_plm_bce.py']

model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='DistributionBalancedLoss',
            preset='CB',
            cb_param=dict(beta=0.99, mode='by_class', normalize=True),
            loss_weight=1.0,
            use_avg_factor=True)))
custom_hooks = [dict(type='ClassStatisticsHook'), *_base_.plm_hooks]
