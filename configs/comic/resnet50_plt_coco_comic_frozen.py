# COMIC on PLT-COCO as the authors' released code trains it: a FROZEN
# ImageNet ResNet-50 (eval mode, no gradient) with a trained 2048 -> 1024
# projection per branch, each branch on its own sampler with the code's
# mapping (balanced <- instance, head <- reversed prop. to n_max / n_k,
# tail <- class-balanced; 3 x 32 images per batch) and the code's learning
# rates (1e-3; classifiers 1e-4).
_base_ = ['./resnet50_plt_coco_comic.py']
model = dict(
    backbone_mode='frozen',
    projection=dict(in_channels=2048, out_channels=1024),
    branch_streams=dict(balanced=0, head=1, tail=2),
    head=dict(in_channels=1024))
train_dataloader = dict(
    batch_size=96,
    sampler=dict(
        _delete_=True,
        type='COMICSampler',
        batch_size_per_stream=32,
        streams=('instance', 'reversed', 'balanced')))
optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    paramwise_cfg=dict(custom_keys={'head.weights': dict(lr_mult=0.1)}))
auto_scale_lr = dict(base_batch_size=96)
