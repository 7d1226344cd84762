from .distribution_balanced_loss import DistributionBalancedLoss
from .multi_label_bce_loss import MultiLabelBCELoss, reduce_elementwise_loss

__all__ = [
    'DistributionBalancedLoss', 'MultiLabelBCELoss', 'reduce_elementwise_loss'
]
