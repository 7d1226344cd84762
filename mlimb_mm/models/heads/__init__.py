from .tristate_linear_head import TriStateLinearClsHead

__all__ = ['TriStateLinearClsHead']

from .comic_head import COMICHead  # noqa: E402

__all__ += ['COMICHead']
