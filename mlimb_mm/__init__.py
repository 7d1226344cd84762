"""mlimb_mm: multi-label classification on long-tailed, noisy and partially
labelled data, as registry components for mmpretrain 1.x / MMEngine.

Importing the package registers every component into mmpretrain's
registries; configs load it with::

    custom_imports = dict(imports=['mlimb_mm'], allow_failed_imports=False)
"""
import warnings

# mmcv-lite has no compiled ops; mmpretrain imports one we never use.
warnings.filterwarnings(
    'ignore', message='Fail to import ``MultiScaleDeformableAttention``')

from .version import __version__  # noqa: E402
from .utils import register_checkpoint_safe_globals
from . import datasets, engine, evaluation, models, structures  # noqa: E402,F401

register_checkpoint_safe_globals()

__all__ = ['__version__']
