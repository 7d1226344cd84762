from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from .hook_utils import shared_seed


def set_epoch_of_modules(model, epoch: int, max_epochs: int,
                         seed: Optional[int] = None) -> int:
    """Call ``set_epoch(epoch, max_epochs)`` (and ``set_seed(seed)`` when
    given) on every module of ``model`` that has them, e.g.
    ``DynamicPartialLoss``; returns how many modules took the epoch."""
    if is_model_wrapper(model):
        model = model.module
    modules = model.modules() if callable(getattr(model, 'modules',
                                                  None)) else []
    count = 0
    for module in modules:
        set_epoch = getattr(module, 'set_epoch', None)
        if not callable(set_epoch):
            continue
        set_epoch(int(epoch), int(max_epochs))
        count += 1
        set_seed = getattr(module, 'set_seed', None)
        if seed is not None and callable(set_seed):
            set_seed(int(seed))
    return count


@HOOKS.register_module()
class LossEpochHook(Hook):
    """Give epoch-dependent losses the training progress: before every
    training epoch, ``set_epoch(runner.epoch, runner.max_epochs)`` (0-based
    epoch) on every module of the model that has it, as mmpretrain's
    parameter-scheduling hooks set a value from the runner, and the run's
    seed (identical on every rank) to those with ``set_seed``.

    ``PseudoLabelHook`` does the same by default; this hook serves a loss
    such as ``DynamicPartialLoss`` used without pseudo labels.

    Args:
        seed (int, optional): Seed given to ``set_seed``; the runner's when
            None.

    Examples:
        >>> custom_hooks = [dict(type='LossEpochHook')]
    """

    priority = 'NORMAL'

    def __init__(self, seed: Optional[int] = None):
        self.seed = seed
        self._seed: Optional[int] = None

    def before_train(self, runner) -> None:
        self._seed = shared_seed(self.seed, runner)

    def before_train_epoch(self, runner) -> None:
        if self._seed is None:
            self._seed = shared_seed(self.seed, runner)
        set_epoch_of_modules(runner.model, runner.epoch, runner.max_epochs,
                             self._seed)
