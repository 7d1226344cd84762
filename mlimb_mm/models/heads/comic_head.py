import inspect
import logging
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmpretrain.models.heads import MultiLabelClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.comic import (additive_attention_weights, batch_mean_ap,
                           cosine_logits, distillation_kappas,
                           distillation_probs)
from .tristate_linear_head import stack_label_field

BRANCHES = ('balanced', 'head', 'tail')
#: the branches with a moving vector (Eq. 10), rows of ``moving_vectors``
MOVING_BRANCHES = ('head', 'tail')
SCORES = ('map', 'soft_accuracy')


def targets_and_weights(samples: List[DataSample], ignore_unknown: bool
                        ) -> Tuple[torch.Tensor, torch.Tensor,
                                   Optional[torch.Tensor]]:
    """``(B, K)`` float targets (``gt_score``) and per-label weights (0 on
    unknown labels when ``ignore_unknown``, times ``label_weight``), and
    the int8 tri-state labels (None when absent)."""
    if 'gt_score' not in samples[0]:
        raise KeyError('COMICHead needs `gt_score` in the data samples: end '
                       'the pipeline with `PackMultiLabelInputs`.')
    target = stack_label_field(samples, 'gt_score').float()
    weight = torch.ones_like(target)
    tristate = stack_label_field(samples, 'gt_tristate')
    if ignore_unknown and tristate is not None:
        weight = weight * (tristate != -1).to(weight)
    label_weight = stack_label_field(samples, 'label_weight')
    if label_weight is not None:
        weight = weight * label_weight.to(weight)
    return target, weight, tristate


def _accepts(module: nn.Module, name: str) -> bool:
    return name in inspect.signature(module.forward).parameters


@MODELS.register_module()
class COMICHead(BaseModule):
    """COMIC's Head-Tail Balancer head (Zhang et al., ICCV 2023, Eq. (8)-
    (11)): balanced, head and tail branches over the features of
    :class:`~mlimb_mm.models.classifiers.COMICClassifier`.

    - Eq. (8): the balanced feature adds what it attends (additive
      attention) in the head and tail features of the same images.
    - Eq. (9): each branch has a normalised multi-head cosine classifier
      (``scale / num_heads``, weight norm offset ``norm_offset``).
    - Eq. (10): the head branch removes (``head_beta``), the tail branch
      adds (``tail_beta``) the component of its feature along its moving
      vector ``e_t`` (buffer ``moving_vectors``, kept by
      :class:`~mlimb_mm.engine.hooks.MovingGradientHook`).
    - Losses: each branch its ``loss`` on its own stream's labels (weights
      ``branch_weights``) plus Eq. (11), ``loss_weight * (kappa_h
      L(phi(z_h) phi(z_b)) + kappa_t L(phi(z_t) phi(z_b)))`` on the balanced
      stream, teachers detached, ``kappa`` from the branches' batch scores
      to the power ``alpha``, ``L`` the balanced loss's MFM on
      probabilities.

    Inference returns ``predict_branch`` (the balanced one; ``'head'`` /
    ``'tail'`` give the paper's Table 1 rows). Notes:
    ``configs/comic/README.md``.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Feature dimension ``D``.
        loss (dict): Loss of every branch (built once per branch).
        num_heads (int): Groups of Eq. (9). Defaults to 2.
        scale (float): Eq. (9)'s scale before ``/ num_heads``. Defaults to 16.
        norm_offset (float): Weight norm offset. Defaults to 1/32.
        head_beta (float): Part of ``e_t`` removed by the head branch.
        tail_beta (float): Part of ``e_t`` added by the tail branch.
        attention (dict, optional): ``hidden_channels`` (``D`` when None),
            ``dropout`` (0.1); None disables Eq. (8).
        distill (dict, optional): ``alpha`` (2), ``phi`` (``'softmax'``),
            ``score`` (``'map'`` or ``'soft_accuracy'``), ``loss_weight``
            (1); None disables Eq. (11).
        branch_weights (dict): Weights of the branch losses.
        ignore_unknown (bool): Weight unknown labels 0. Defaults to False
            (unknown labels are negatives, as in the paper).
        predict_branch (str): Branch returned at inference.
        thr (float, optional) / topk (int, optional): As
            ``MultiLabelClsHead``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 loss: dict = dict(type='ReflectiveLabelCorrectionLoss'),
                 num_heads: int = 2,
                 scale: float = 16.,
                 norm_offset: float = 1. / 32,
                 head_beta: float = 1.,
                 tail_beta: float = 1.,
                 attention: Optional[dict] = dict(),
                 distill: Optional[dict] = dict(),
                 branch_weights: Optional[Dict[str, float]] = None,
                 ignore_unknown: bool = False,
                 predict_branch: str = 'balanced',
                 thr: Optional[float] = None,
                 topk: Optional[int] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        if in_channels % num_heads:
            raise ValueError(f'{name}: num_heads={num_heads} must divide '
                             f'in_channels={in_channels}.')
        if predict_branch not in BRANCHES:
            raise ValueError(f'{name}: predict_branch must be one of '
                             f'{BRANCHES}, got {predict_branch!r}.')
        if not (scale > 0 and norm_offset > 0):
            raise ValueError(f'{name}: scale and norm_offset must be > 0.')
        self.num_classes, self.in_channels = num_classes, in_channels
        self.num_heads, self.scale = num_heads, float(scale)
        self.norm_offset = float(norm_offset)
        self.betas = dict(head=-float(head_beta), tail=float(tail_beta))
        self.ignore_unknown = ignore_unknown
        self.predict_branch = predict_branch
        self.thr, self.topk = (0.5 if thr is None and topk is None else
                               thr), topk
        weights = dict(balanced=1., head=1., tail=1.)
        weights.update(branch_weights or {})
        if set(weights) != set(BRANCHES):
            raise ValueError(f'{name}: branch_weights keys must be among '
                             f'{BRANCHES}, got {sorted(weights)}.')
        self.branch_weights = weights

        self.weights = nn.ParameterDict({
            b: nn.Parameter(torch.empty(num_classes, in_channels))
            for b in BRANCHES
        })
        self.losses = nn.ModuleDict({b: MODELS.build(loss) for b in BRANCHES})
        self.register_buffer('moving_vectors',
                             torch.zeros(len(MOVING_BRANCHES), in_channels))
        self._build_attention(attention)
        self.distill = self._check_distill(distill)
        self._feature_means: Optional[torch.Tensor] = None
        self._warned = False
        self.reset_classifiers()

    def _build_attention(self, attention: Optional[dict]) -> None:
        self.with_attention = attention is not None
        if not self.with_attention:
            return
        unknown = set(attention) - {'hidden_channels', 'dropout'}
        if unknown:
            raise ValueError(f'COMICHead: unknown attention keys {unknown}.')
        hidden = attention.get('hidden_channels') or self.in_channels
        self.attn_query = nn.Linear(self.in_channels, hidden, bias=False)
        self.attn_key = nn.Linear(self.in_channels, hidden, bias=False)
        self.attn_value = nn.Linear(hidden, 1, bias=False)
        self.attn_dropout = nn.Dropout(attention.get('dropout', 0.1))

    def _check_distill(self, distill: Optional[dict]) -> Optional[dict]:
        if distill is None:
            return None
        cfg = dict(alpha=2., phi='softmax', score='map', loss_weight=1.)
        unknown = set(distill) - set(cfg)
        if unknown:
            raise ValueError(f'COMICHead: unknown distill keys {unknown}.')
        cfg.update(distill)
        if cfg['phi'] not in ('softmax', 'sigmoid'):
            raise ValueError("COMICHead: distill phi must be 'softmax' or "
                             f"'sigmoid', got {cfg['phi']!r}.")
        if cfg['score'] not in SCORES:
            raise ValueError(f'COMICHead: distill score must be one of '
                             f"{SCORES}, got {cfg['score']!r}.")
        self.distill_loss_module()  # raises when it cannot take probs
        return cfg

    def distill_loss_module(self) -> nn.Module:
        """The loss of Eq. (11) (on probabilities): the balanced branch's
        loss, or the loss it wraps (the MFM inside the label corrector)."""
        loss = self.losses['balanced']
        for candidate in (loss, getattr(loss, 'loss', None)):
            if candidate is not None and _accepts(candidate, 'is_prob'):
                return candidate
        raise TypeError(
            'COMICHead: the distillation of Eq. (11) evaluates the branch '
            'loss on probabilities; it needs MultiFocalModifierLoss (also '
            'inside ReflectiveLabelCorrectionLoss), got '
            f'{type(loss).__name__}. For BCE use MultiFocalModifierLoss('
            'pn_factor=False, ht_factor=False, clip=0), or set distill=None.')

    def reset_classifiers(self) -> None:
        bound = 1. / math.sqrt(self.in_channels)  # as the authors' code
        for weight in self.weights.values():
            nn.init.uniform_(weight, -bound, bound)

    # ------------------------------------------------------------------
    # Eq. (8)-(10)
    # ------------------------------------------------------------------
    def attend(self, balanced: torch.Tensor, head: torch.Tensor,
               tail: torch.Tensor) -> torch.Tensor:
        """Eq. (8): ``f_b + Attn(f_b, [f_h, f_t])`` (``f_b`` unchanged
        without attention)."""
        if not self.with_attention:
            return balanced
        keys = torch.stack([head, tail], dim=1).float()
        attn = additive_attention_weights(balanced, keys,
                                          self.attn_query.weight,
                                          self.attn_key.weight,
                                          self.attn_value.weight)
        attn = self.attn_dropout(attn)
        return balanced.float() + torch.bmm(attn.unsqueeze(1), keys).squeeze(1)

    def branch_logits(self, branch: str, feats: torch.Tensor) -> torch.Tensor:
        """Eq. (9), and Eq. (10) for the head and tail branches."""
        moving, beta = None, 0.
        if branch in MOVING_BRANCHES:
            moving = self.moving_vectors[MOVING_BRANCHES.index(branch)]
            beta = self.betas[branch]
        return cosine_logits(feats, self.weights[branch], self.num_heads,
                             self.scale, self.norm_offset, moving, beta)

    def all_logits(self, feats: Dict[str, torch.Tensor]
                   ) -> Dict[str, torch.Tensor]:
        """The three branches' logits on the same images (``feats``: branch
        -> ``(B, D)``)."""
        balanced = self.attend(feats['balanced'], feats['head'],
                               feats['tail'])
        return dict(balanced=self.branch_logits('balanced', balanced),
                    head=self.branch_logits('head', feats['head']),
                    tail=self.branch_logits('tail', feats['tail']))

    def forward(self, feats: Dict[str, torch.Tensor]) -> torch.Tensor:
        """The logits of ``predict_branch``."""
        if self.predict_branch == 'balanced':
            return self.all_logits(feats)['balanced']
        return self.branch_logits(self.predict_branch,
                                  feats[self.predict_branch])

    def predict(self, feats: Dict[str, torch.Tensor],
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        return MultiLabelClsHead._get_predictions(self, self(feats),
                                                  data_samples)

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def pop_feature_means(self) -> Optional[torch.Tensor]:
        """The ``(2, D)`` batch-mean features of the head and tail branches
        of the last training step (``s_t``), None when popped already."""
        means, self._feature_means = self._feature_means, None
        return means

    def _branch_loss(self, branch: str, logits: torch.Tensor,
                     samples: List[DataSample]) -> torch.Tensor:
        target, weight, tristate = targets_and_weights(samples,
                                                       self.ignore_unknown)
        device = logits.device
        kwargs = {}
        loss = self.losses[branch]
        if _accepts(loss, 'tristate'):
            if tristate is None:
                raise KeyError('COMICHead: the label corrector needs '
                               '`gt_tristate` (PackMultiLabelInputs).')
            kwargs['tristate'] = tristate.to(device)
        if _accepts(loss, 'sample_idx'):
            try:
                kwargs['sample_idx'] = torch.as_tensor(
                    [int(s.metainfo['sample_idx']) for s in samples])
            except KeyError:
                pass
        return loss(logits, target.to(device), weight=weight.to(device),
                    avg_factor=logits.size(0), **kwargs)

    def _score(self, logits: torch.Tensor, target: torch.Tensor,
               weight: torch.Tensor) -> torch.Tensor:
        probs = torch.sigmoid(logits.detach().float())
        if self.distill['score'] == 'map':
            return batch_mean_ap(probs, target, weight > 0)
        right = target * probs + (1 - target) * (1 - probs)
        return (weight * right).sum() / weight.sum().clamp_min(1e-12)

    def _distillation(self, z_b: torch.Tensor,
                      teachers: Dict[str, torch.Tensor],
                      samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Eq. (11) on the balanced stream."""
        target, weight, _ = targets_and_weights(samples, self.ignore_unknown)
        target, weight = target.to(z_b.device), weight.to(z_b.device)
        cfg, loss_fn = self.distill, self.distill_loss_module()
        scores = {b: self._score(z, target, weight)
                  for b, z in teachers.items()}
        kappa_h, kappa_t = distillation_kappas(scores['head'], scores['tail'],
                                               cfg['alpha'])
        total = z_b.new_zeros((), dtype=torch.float32)
        for branch, kappa in (('head', kappa_h), ('tail', kappa_t)):
            probs = distillation_probs(teachers[branch], z_b, cfg['phi'])
            total = total + kappa * loss_fn(probs, target, weight=weight,
                                            avg_factor=z_b.size(0),
                                            is_prob=True)
        return dict(loss_htb=cfg['loss_weight'] * total,
                    kappa_head=z_b.new_tensor(kappa_h),
                    score_head=scores['head'].to(z_b),
                    score_tail=scores['tail'].to(z_b))

    def loss(self, feats: Dict[str, Dict[int, torch.Tensor]],
             stream_samples: Sequence[List[DataSample]],
             branch_streams: Dict[str, int]) -> Dict[str, torch.Tensor]:
        """The losses of a training step.

        Args:
            feats: branch -> stream index -> ``(B, D)`` features; the head
                and tail branches also on the balanced branch's stream.
            stream_samples: the data samples of each stream.
            branch_streams: the stream of each branch.
        """
        s_b = branch_streams['balanced']
        own = {b: feats[b][branch_streams[b]] for b in BRANCHES}
        balanced = self.attend(own['balanced'], feats['head'][s_b],
                               feats['tail'][s_b])
        logits = dict(balanced=self.branch_logits('balanced', balanced))
        for branch in MOVING_BRANCHES:
            logits[branch] = self.branch_logits(branch, own[branch])
        if self._feature_means is not None and not self._warned:
            self._warned = True  # the last step's means were not consumed
            print_log(
                'COMICHead: nothing updates the moving vectors of Eq. (10) '
                "(they stay 0): add dict(type='MovingGradientHook') to "
                'custom_hooks.', 'current', logging.WARNING)
        self._feature_means = torch.stack(
            [own[b].detach().float().mean(0) for b in MOVING_BRANCHES])
        losses = {}
        for branch in BRANCHES:
            samples = stream_samples[branch_streams[branch]]
            losses[f'loss_{branch}'] = self.branch_weights[branch] * \
                self._branch_loss(branch, logits[branch], samples)
        if self.distill is not None:
            teachers = {
                b: logits[b] if branch_streams[b] == s_b else
                self.branch_logits(b, feats[b][s_b])
                for b in MOVING_BRANCHES
            }
            losses.update(self._distillation(logits['balanced'], teachers,
                                             stream_samples[s_b]))
        return losses
