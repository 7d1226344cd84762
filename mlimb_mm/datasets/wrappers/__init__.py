from .base_label_wrapper import (BaseLabelWrapper, dataset_clean_labels,
                                 dataset_tristate_labels)
from .long_tail_subset import LongTailSubsetDataset
from .missing_labels import MissingLabelDataset
from .noisy_labels import NoisyLabelDataset

__all__ = [
    'BaseLabelWrapper', 'dataset_clean_labels', 'dataset_tristate_labels',
    'MissingLabelDataset', 'LongTailSubsetDataset', 'NoisyLabelDataset'
]
