from .distribution_balanced_loss import DistributionBalancedLoss
from .multi_label_bce_loss import MultiLabelBCELoss, reduce_elementwise_loss

__all__ = [
    'DistributionBalancedLoss', 'MultiLabelBCELoss', 'reduce_elementwise_loss'
]

# partially annotated labels (Zhang et al.) and their baselines
from .assume_negative_loss import AssumeNegativeLoss  # noqa: E402
from .dynamic_partial_loss import DynamicPartialLoss  # noqa: E402
from .multi_label_asymmetric_loss import \
    MultiLabelAsymmetricLoss  # noqa: E402

__all__ += [
    'AssumeNegativeLoss', 'DynamicPartialLoss', 'MultiLabelAsymmetricLoss'
]

# COMIC (Zhang et al., ICCV 2023)
from .multi_focal_modifier_loss import MultiFocalModifierLoss  # noqa: E402
from .reflective_label_correction_loss import \
    ReflectiveLabelCorrectionLoss  # noqa: E402

__all__ += ['MultiFocalModifierLoss', 'ReflectiveLabelCorrectionLoss']
