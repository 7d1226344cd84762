# COMIC on CocoLike-PLT as the authors' released code trains it: a FROZEN
# pre-trained backbone (eval mode, no gradient) and a trained projection
# per branch (the code: 2048 -> 1024, here 128 -> 64), each branch fed by
# its own sampler, the code's mapping: balanced branch <- instance stream,
# head branch <- reversed stream (classes drawn prop. to n_max / n_k), tail
# branch <- class-balanced stream. A DataLoader batch holds 3 x 32 images.
# The code's learning rates: 1e-3 for the projections and the attention,
# 1e-4 for the classifiers.
_base_ = ['./resnet18_cocolike_plt_comic.py']
model = dict(
    backbone_mode='frozen',
    projection=dict(in_channels=128, out_channels=64),
    branch_streams=dict(balanced=0, head=1, tail=2),
    head=dict(in_channels=64))
train_dataloader = dict(
    batch_size=96,
    sampler=dict(
        _delete_=True,
        type='COMICSampler',
        batch_size_per_stream=32,
        streams=('instance', 'reversed', 'balanced')))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'head.weights': dict(lr_mult=0.1)}))
auto_scale_lr = dict(base_batch_size=96)
