from .checkpoint import (checkpoint_safe_globals,
                         register_checkpoint_safe_globals)
from .embedded_weights import (ensure_embedded, mlimb_mm_home,
                               register_embedded)
from .launch import setup_cpu_distributed

__all__ = [
    'checkpoint_safe_globals', 'ensure_embedded', 'mlimb_mm_home',
    'register_checkpoint_safe_globals', 'register_embedded',
    'setup_cpu_distributed'
]
