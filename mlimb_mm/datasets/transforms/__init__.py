from .auto_augment import (FAST_SIMPLE_INCREASING, FastAutoContrast,
                           FastEqualize)
from .formatting import PackMultiLabelInputs

__all__ = [
    'PackMultiLabelInputs', 'FastAutoContrast', 'FastEqualize',
    'FAST_SIMPLE_INCREASING'
]
