from .balance_mix_hook import BalanceMixHook
from .class_statistics_hook import (ClassStatisticsHook,
                                    get_dataset_class_statistics)
from .label_store_hook import (LabelStoreHook, get_label_store,
                               sync_label_store)
from .plm_hook import PLMHook

__all__ = [
    'BalanceMixHook',
    'ClassStatisticsHook', 'get_dataset_class_statistics', 'LabelStoreHook',
    'get_label_store', 'sync_label_store', 'PLMHook'
]
