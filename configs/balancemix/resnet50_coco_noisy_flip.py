# BalanceMix on MS-COCO, "Rand. Flip" setting (Song et al. 2024,
# §Evaluation): every label, positive or negative, flipped independently
# with probability 0.4 (../_base_/datasets/coco_noisy_flip.py). Everything
# else as resnet50_coco_noisy.py (Appendix D schedule, tau 0.975).
_base_ = ['./resnet50_coco_noisy.py']

train_dataloader = dict(dataset=dict(noise_type='flip', rho=0.4))
