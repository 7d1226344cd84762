from .base_label_wrapper import (BaseLabelWrapper, dataset_clean_labels,
                                 dataset_tristate_labels)

__all__ = [
    'BaseLabelWrapper', 'dataset_clean_labels', 'dataset_tristate_labels'
]
