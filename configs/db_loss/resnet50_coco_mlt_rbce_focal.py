# R-BCE-Focal on COCO-MLT, the DB paper's setting.
_base_ = ['./resnet50_coco_mlt_db_focal.py']
model = dict(head=dict(loss=dict(preset='R-BCE-Focal')))
