from typing import Dict, List, Optional, Tuple

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
    (the "assume negative" baseline of partial-label papers). With
    ``pass_tristate=True`` the loss also receives the ``(B, K)`` int8
    tri-state labels as ``tristate=``, so it can treat unknown labels itself
    (pseudo labels, label correction) instead of only through a zero weight;
    set ``ignore_unknown=False`` too when it does.

    **Training predictions for hooks.** Methods that adapt to the epoch's
    own training predictions (PLM's ratio update, BalanceMix's minority
    scores, ...) read them from the head instead of running an extra pass:
    a consumer registers once with :meth:`enable_train_predictions` and,
    after every training step, takes what the head recorded since its last
    call with :meth:`pop_train_predictions`: one record per loss call, each
    ``dict(logits=(B, K) detached tensor on the model's device,
    sample_idx=(B,) int64 CPU tensor or None)``. Nothing is recorded while
    no consumer is registered (the default: no cost, no behaviour change),
    and nothing is recorded outside training mode. Each consumer has its
    own queue, so several hooks can read the same step. Memory: the
    detached ``(B, K)`` logits of the steps a consumer has not popped yet
    (one step when it pops in ``after_train_iter``).

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Input feature channels.
        loss (dict): Config of a loss that takes a per-label ``weight``.
            Defaults to ``dict(type='MultiLabelBCELoss')``.
        ignore_unknown (bool): Weight unknown labels by 0. Defaults to True.
        dropout (float): Dropout ratio before the linear layer (the DB
            paper's released model uses 0.5 after its 256-d neck).
            Defaults to 0.
        pass_tristate (bool): Call the loss with ``tristate=`` (the
            ``(B, K)`` int8 labels on the logits' device). Defaults to False.
        **kwargs: Other arguments of ``MultiLabelLinearClsHead``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 loss: dict = dict(type='MultiLabelBCELoss'),
                 ignore_unknown: bool = True,
                 dropout: float = 0.,
                 pass_tristate: bool = False,
                 **kwargs):
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            loss=loss,
            **kwargs)
        self.ignore_unknown = ignore_unknown
        self.pass_tristate = pass_tristate
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        # consumer name -> records not popped yet (see the class docstring)
        self._train_prediction_queues: Dict[str, List[dict]] = {}

    # ------------------------------------------------------------------
    # training predictions for hooks
    # ------------------------------------------------------------------
    def enable_train_predictions(self, consumer: str) -> None:
        """Start recording the training logits for ``consumer`` (idempotent;
        a new consumer starts with an empty queue)."""
        self._train_prediction_queues.setdefault(str(consumer), [])

    def disable_train_predictions(self, consumer: str) -> None:
        """Stop recording for ``consumer`` and drop its queue."""
        self._train_prediction_queues.pop(str(consumer), None)

    def pop_train_predictions(self, consumer: str) -> List[dict]:
        """The records of the training loss calls since ``consumer``'s last
        call (oldest first), and clear its queue.

        Each record is ``dict(logits=Tensor (B, K), sample_idx=Tensor (B,)
        or None)``; ``logits`` is detached (shared between consumers: do not
        modify it in place), ``sample_idx`` holds the data samples'
        ``metainfo['sample_idx']`` (None when a sample lacks it).

        Raises:
            KeyError: when ``consumer`` was never enabled.
        """
        try:
            records = self._train_prediction_queues[str(consumer)]
        except KeyError:
            raise KeyError(
                f'{type(self).__name__}.pop_train_predictions: consumer '
                f'{consumer!r} is not enabled; call '
                'enable_train_predictions(consumer) first.') from None
        self._train_prediction_queues[str(consumer)] = []
        return records

    def _record_train_predictions(self, cls_score: torch.Tensor,
                                  data_samples: List[DataSample]) -> None:
        queues = getattr(self, '_train_prediction_queues', None)
        if not queues or not self.training:
            return
        sample_idx: Optional[torch.Tensor] = None
        try:
            sample_idx = torch.as_tensor(
                [int(s.metainfo['sample_idx']) for s in data_samples],
                dtype=torch.int64)
        except (KeyError, TypeError, ValueError):
            sample_idx = None
        record = dict(logits=cls_score.detach(), sample_idx=sample_idx)
        for queue in queues.values():
            queue.append(record)

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
        self._record_train_predictions(cls_score, data_samples)
        target, weight = self.get_targets_and_weights(data_samples)
        target, weight = target.to(cls_score.device), weight.to(
            cls_score.device)
        if self.pass_tristate:
            tristate = stack_label_field(data_samples, 'gt_tristate')
            if tristate is None:
                raise KeyError(
                    f'{type(self).__name__}(pass_tristate=True) needs '
                    '`gt_tristate` in the data samples: end the pipeline '
                    'with `PackMultiLabelInputs`.')
            kwargs['tristate'] = tristate.to(cls_score.device, torch.int8)
        loss = self.loss_module(
            cls_score,
            target,
            weight=weight,
            avg_factor=cls_score.size(0),
            **kwargs)
        return dict(loss=loss)
