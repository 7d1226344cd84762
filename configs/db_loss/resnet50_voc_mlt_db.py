# DB (R-BCE + NT-BCE) on VOC-MLT, the DB paper's setting.
_base_ = ['./resnet50_voc_mlt_db_focal.py']
model = dict(head=dict(loss=dict(preset='DB')))  # keeps lambda=5
