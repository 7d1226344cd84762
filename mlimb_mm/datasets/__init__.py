from . import samplers, transforms, wrappers  # noqa: F401
from .base_multi_label import BaseMultiLabelDataset
from .coco_like_digits import CocoLikeDigits, PrintedCocoLikeDigits
from .coco_multilabel import CocoMultiLabelDataset
from .long_tail_multi_digits import LongTailMultiDigits
from .printed_multi_digits import PrintedMultiDigits
from .tristate_multilabel import TriStateMultiLabelDataset

__all__ = [
    'BaseMultiLabelDataset', 'CocoLikeDigits', 'CocoMultiLabelDataset',
    'LongTailMultiDigits', 'PrintedCocoLikeDigits', 'PrintedMultiDigits',
    'TriStateMultiLabelDataset'
]
