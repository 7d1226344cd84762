from .label_store import LabelStore

__all__ = ['LabelStore']
