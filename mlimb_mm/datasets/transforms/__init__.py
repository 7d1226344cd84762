from .formatting import PackMultiLabelInputs

__all__ = ['PackMultiLabelInputs']
