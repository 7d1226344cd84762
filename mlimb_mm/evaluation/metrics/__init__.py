from .class_counts import ClassCountsMixin, count_dataset_classes
from .long_tail_map import (LongTailMultiLabelMetric, average_precision,
                            long_tail_groups)
from .multi_label_prf import (MultiLabelPRFMetric, exact_match,
                              precision_recall_f1)

__all__ = [
    'LongTailMultiLabelMetric', 'MultiLabelPRFMetric', 'average_precision',
    'long_tail_groups', 'precision_recall_f1', 'exact_match',
    'ClassCountsMixin', 'count_dataset_classes'
]
