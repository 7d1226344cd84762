# DB-Focal (Table 1) with class-aware re-sampling on CocoLike-MLT (the embedded
# COCO-shaped digits, docs/cocolike.md).
_base_ = ['./resnet18_cocolike_mlt_rs.py']
model = dict(head=dict(loss=dict(preset='DB-Focal')))
