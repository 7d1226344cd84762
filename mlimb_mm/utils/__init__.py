from .checkpoint import (checkpoint_safe_globals,
                         register_checkpoint_safe_globals)
from .launch import setup_cpu_distributed

__all__ = [
    'checkpoint_safe_globals', 'register_checkpoint_safe_globals',
    'setup_cpu_distributed'
]
