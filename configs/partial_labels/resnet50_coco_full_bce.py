# Upper bound of the COCO partial-label tables: BCE on the FULL COCO 2014
# training labels (no MissingLabelDataset), the recipe of
# ./resnet50_coco_pal60_an.py (Tables IV-VI "BCE": 75.8 mAP).
_base_ = ['./resnet50_coco_pal60_an.py']
train_dataloader = dict(
    dataset=dict(
        _delete_=True, pipeline=_base_.train_pipeline,
        **_base_.coco2014_train))
model = dict(head=dict(ignore_unknown=True))
