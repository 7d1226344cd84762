"""Finding the head whose training predictions a method hook reads."""
from mmengine.model import is_model_wrapper
from torch import nn


def find_recording_head(model: nn.Module, hook_name: str) -> nn.Module:
    """The module that records its training predictions
    (``enable_train_predictions`` / ``pop_train_predictions``, e.g.
    ``TriStateLinearClsHead``): ``model.head`` when it does, else the only
    such module. Raises, naming ``hook_name``, when there is none or when
    several do and none is ``model.head``."""
    if is_model_wrapper(model):
        model = model.module

    def records(module) -> bool:
        return callable(getattr(module, 'enable_train_predictions', None)) \
            and callable(getattr(module, 'pop_train_predictions', None))

    head = getattr(model, 'head', None)
    if head is not None and records(head):
        return head
    modules = model.modules() if callable(getattr(model, 'modules',
                                                  None)) else []
    candidates = [m for m in modules if records(m)]
    if not candidates:
        raise TypeError(
            f'{hook_name} needs a head that records its training predictions '
            '(enable_train_predictions / pop_train_predictions, e.g. '
            f'TriStateLinearClsHead); {type(model).__name__} has none.')
    if len(candidates) > 1:
        raise RuntimeError(
            f'{hook_name}: {len(candidates)} modules record training '
            'predictions and none is `model.head`; cannot choose.')
    return candidates[0]
