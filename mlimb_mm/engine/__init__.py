from .hooks import *  # noqa: F401,F403
from .optim_wrappers import AutocastOptimWrapper, amp_optim_wrapper_cfg
from .training_set_pass import TrainingSetPass, tensor_view_augment

__all__ = [
    'AutocastOptimWrapper', 'amp_optim_wrapper_cfg', 'TrainingSetPass',
    'tensor_view_augment'
]
