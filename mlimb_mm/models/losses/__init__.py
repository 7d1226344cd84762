from .multi_label_bce_loss import MultiLabelBCELoss, reduce_elementwise_loss

__all__ = ['MultiLabelBCELoss', 'reduce_elementwise_loss']
