# RS on VOC-MLT, the DB paper's setting.
_base_ = ['./resnet50_voc_mlt_db_focal.py']
# Without the DB-Focal base's NT regularisation (lambda=5).
model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='DistributionBalancedLoss',
            preset='BCE',
            map_param=dict(alpha=0.1, beta=10.0, mu=0.3))))
