from .label_store_hook import LabelStoreHook

__all__ = ['LabelStoreHook']
