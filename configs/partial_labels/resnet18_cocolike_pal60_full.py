# Upper bound of the partial-label tables on the embedded COCO-shaped
# digits: BCE on the FULL labels of the same 1,500 natural training images
# (../_base_/datasets/cocolike.py, no MissingLabelDataset), the recipe of
# ./resnet18_cocolike_pal60_an.py. The pal30 / spl "full" configs are this
# run under the names of their tables.
_base_ = ['./resnet18_cocolike_pal60_an.py']
train_dataloader = dict(
    dataset=dict(
        _delete_=True, pipeline=_base_.train_pipeline,
        **_base_.cocolike_train))
model = dict(head=dict(ignore_unknown=True))
