from .label_store_hook import (LabelStoreHook, get_label_store,
                               sync_label_store)

__all__ = ['LabelStoreHook', 'get_label_store', 'sync_label_store']
