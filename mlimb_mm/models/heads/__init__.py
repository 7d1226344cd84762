from .tristate_linear_head import TriStateLinearClsHead

__all__ = ['TriStateLinearClsHead']
