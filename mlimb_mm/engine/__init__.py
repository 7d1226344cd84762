from .hooks import *  # noqa: F401,F403
from .training_set_pass import TrainingSetPass, tensor_view_augment

__all__ = ['TrainingSetPass', 'tensor_view_augment']
