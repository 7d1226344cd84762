from .balance_mix_hook import BalanceMixHook
from .class_statistics_hook import (ClassStatisticsHook,
                                    get_dataset_class_statistics)
from .label_refinement_hook import LabelRefinementHook
from .label_store_hook import (LabelStoreHook, StoreField, get_label_store,
                               get_label_store_hook, sync_label_store)
from .plm_hook import PLMHook
from .stateful_hook import StatefulHook

__all__ = [
    'BalanceMixHook', 'ClassStatisticsHook', 'get_dataset_class_statistics',
    'LabelRefinementHook', 'LabelStoreHook', 'StoreField', 'get_label_store',
    'get_label_store_hook',
    'sync_label_store', 'PLMHook', 'StatefulHook'
]

# partially annotated labels (Zhang et al.)
from .loss_epoch_hook import LossEpochHook, set_epoch_of_modules  # noqa
from .pseudo_label_hook import PseudoLabelHook  # noqa: E402

__all__ += ['LossEpochHook', 'set_epoch_of_modules', 'PseudoLabelHook']

# COMIC (Zhang et al., ICCV 2023)
from .label_correction_hook import ReflectiveLabelCorrectionHook  # noqa: E402
from .moving_gradient_hook import MovingGradientHook  # noqa: E402

__all__ += ['ReflectiveLabelCorrectionHook', 'MovingGradientHook']
