from typing import List, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import MultiLabelLinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


def stack_label_field(data_samples: List[DataSample], name: str):
    """Stack one per-sample label field into a ``(B, K)`` tensor, or None
    when the samples do not carry it."""
    if name not in data_samples[0]:
        return None
    return torch.stack([sample.get(name) for sample in data_samples])


@MODELS.register_module()
class TriStateLinearClsHead(MultiLabelLinearClsHead):
    """Linear multi-label head whose loss respects tri-state labels and
    per-label weights.

    The loss target is ``gt_score`` (multi-hot from the dataset, or working
    targets written by a hook, e.g. refined or pseudo labels). The per-label
    weight passed to the loss is the product of

    - ``gt_tristate != -1``: unknown labels cost nothing;
    - ``label_weight`` when the data samples carry it (set by hooks: PLM
      masks, BalanceMix reliabilities, ...).

    With ``ignore_unknown=False`` unknown labels are kept as negatives
    (the "assume negative" baseline of partial-label papers).

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Input feature channels.
        loss (dict): Config of a loss that takes a per-label ``weight``.
            Defaults to ``dict(type='MultiLabelBCELoss')``.
        ignore_unknown (bool): Weight unknown labels by 0. Defaults to True.
        dropout (float): Dropout ratio before the linear layer (the DB
            paper's released model uses 0.5 after its 256-d neck).
            Defaults to 0.
        **kwargs: Other arguments of ``MultiLabelLinearClsHead``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 loss: dict = dict(type='MultiLabelBCELoss'),
                 ignore_unknown: bool = True,
                 dropout: float = 0.,
                 **kwargs):
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            loss=loss,
            **kwargs)
        self.ignore_unknown = ignore_unknown
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        return self.dropout(feats[-1])

    def get_targets_and_weights(
            self, data_samples: List[DataSample]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Loss targets and per-label weights, both ``(B, K)`` float."""
        target = stack_label_field(data_samples, 'gt_score').float()
        weight = torch.ones_like(target)
        tristate = stack_label_field(data_samples, 'gt_tristate')
        if self.ignore_unknown and tristate is not None:
            weight = weight * (tristate != -1).to(weight)
        label_weight = stack_label_field(data_samples, 'label_weight')
        if label_weight is not None:
            weight = weight * label_weight.to(weight)
        return target, weight

    def _get_loss(self, cls_score: torch.Tensor,
                  data_samples: List[DataSample], **kwargs) -> dict:
        if 'gt_score' not in data_samples[0]:
            raise KeyError(
                f'{type(self).__name__} needs `gt_score` in the data samples:'
                ' end the pipeline with `PackMultiLabelInputs`.')
        target, weight = self.get_targets_and_weights(data_samples)
        target, weight = target.to(cls_score.device), weight.to(
            cls_score.device)
        loss = self.loss_module(
            cls_score,
            target,
            weight=weight,
            avg_factor=cls_score.size(0),
            **kwargs)
        return dict(loss=loss)
