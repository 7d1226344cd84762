from typing import Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.model import ModuleDict
from mmpretrain.models.classifiers import BaseClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

BRANCHES = ('balanced', 'head', 'tail')
BACKBONE_MODES = ('separate', 'shared', 'frozen')


@MODELS.register_module()
class COMICClassifier(BaseClassifier):
    """The three-branch model of COMIC's Head-Tail Balancer (Zhang et al.,
    ICCV 2023, §3.4) around a :class:`~mlimb_mm.models.heads.COMICHead`.

    Backbones (``backbone_mode``):

    - ``'separate'``: one backbone (and neck) per branch, the paper's
      "three models ... with their own backbone and classifier";
    - ``'shared'``: one trained backbone, a projection per branch (cheaper);
    - ``'frozen'``: one frozen backbone (eval mode, no gradient) and a
      trained projection per branch, the authors' released code (2048 ->
      1024; one copy is enough since frozen copies are identical).

    ``projection=dict(in_channels, out_channels)`` adds a linear projection
    per branch (required by ``'shared'`` and ``'frozen'``).

    Streams: a training batch holds ``num_streams`` consecutive blocks of
    ``B`` samples (``COMICSampler``'s layout, e.g. instance / reversed /
    balanced); ``branch_streams`` names the block each branch trains on
    (None: all branches on the whole batch, the default). The head and tail
    branches also see the balanced branch's block, for Eq. (8) and (11),
    which pair the branches on the same images. At inference every branch
    sees the same images.

    Args:
        backbone (dict): Backbone config (built once per branch in
            ``'separate'`` mode).
        head (dict): ``COMICHead`` config.
        neck (dict): Neck config. Defaults to global average pooling.
        backbone_mode (str): See above. Defaults to ``'separate'``.
        projection (dict, optional): ``in_channels`` / ``out_channels``.
        branch_streams (dict, optional): branch -> block index.
        data_preprocessor (dict, optional): As ``ImageClassifier``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 neck: Optional[dict] = dict(type='GlobalAveragePooling'),
                 backbone_mode: str = 'separate',
                 projection: Optional[dict] = None,
                 branch_streams: Optional[Dict[str, int]] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        name = type(self).__name__
        data_preprocessor = dict(data_preprocessor or {})
        data_preprocessor.setdefault('type', 'ClsDataPreprocessor')
        if data_preprocessor.get('batch_augments'):
            raise ValueError(f'{name}: batch_augments would mix the samples '
                             'of different streams; not supported.')
        super().__init__(init_cfg=init_cfg,
                         data_preprocessor=MODELS.build(data_preprocessor))
        if backbone_mode not in BACKBONE_MODES:
            raise ValueError(f'{name}: backbone_mode must be one of '
                             f'{BACKBONE_MODES}, got {backbone_mode!r}.')
        if backbone_mode != 'separate' and projection is None:
            raise ValueError(
                f"{name}(backbone_mode={backbone_mode!r}) needs "
                '`projection=dict(in_channels=..., out_channels=...)`: '
                'without one the three branches would see the same features.')
        self.backbone_mode = backbone_mode
        self.branch_streams = self._check_streams(branch_streams)
        if backbone_mode == 'separate':
            # mmengine's ModuleDict: init_weights reaches each backbone's
            # init_cfg (pre-trained weights in every branch)
            self.backbones = ModuleDict(
                {b: MODELS.build(backbone) for b in BRANCHES})
            self.necks = ModuleDict({
                b: MODELS.build(neck) if neck else nn.Identity()
                for b in BRANCHES
            })
        else:
            self.backbone = MODELS.build(backbone)
            self.neck = MODELS.build(neck) if neck else None
        if backbone_mode == 'frozen':
            for param in self.backbone.parameters():
                param.requires_grad_(False)
        self.projections = None
        if projection is not None:
            if set(projection) != {'in_channels', 'out_channels'}:
                raise ValueError(f'{name}: projection must be dict('
                                 'in_channels=..., out_channels=...).')
            self.projections = ModuleDict({
                b: nn.Linear(projection['in_channels'],
                             projection['out_channels'])
                for b in BRANCHES
            })
        self.head = MODELS.build(head)

    @staticmethod
    def _check_streams(branch_streams) -> Dict[str, int]:
        if branch_streams is None:
            return {b: 0 for b in BRANCHES}
        streams = dict(branch_streams)
        if set(streams) != set(BRANCHES) or not all(
                isinstance(v, int) and v >= 0 for v in streams.values()):
            raise ValueError(
                'COMICClassifier: branch_streams must map balanced, head and '
                f'tail to block indices >= 0, got {branch_streams!r}.')
        used = set(streams.values())
        if used != set(range(max(used) + 1)):
            raise ValueError('COMICClassifier: branch_streams leaves a block '
                             f'of the batch unused: {streams}.')
        return streams

    @property
    def num_streams(self) -> int:
        """Blocks of ``B`` samples in a training batch."""
        return max(self.branch_streams.values()) + 1

    def train(self, mode: bool = True):
        super().train(mode)
        if self.backbone_mode == 'frozen':
            self.backbone.eval()
            if self.neck is not None:
                self.neck.eval()
        return self

    # ------------------------------------------------------------------
    # features
    # ------------------------------------------------------------------
    def _trunk(self, branch: str, inputs: torch.Tensor) -> torch.Tensor:
        if self.backbone_mode == 'separate':
            backbone, neck = self.backbones[branch], self.necks[branch]
        else:
            backbone, neck = self.backbone, self.neck
        with torch.set_grad_enabled(torch.is_grad_enabled()
                                    and self.backbone_mode != 'frozen'):
            x = backbone(inputs)
            if neck is not None:
                x = neck(x)
        x = x[-1] if isinstance(x, (tuple, list)) else x
        return x.flatten(1)

    def _project(self, branch: str, feats: torch.Tensor) -> torch.Tensor:
        if self.projections is None:
            return feats
        return self.projections[branch](feats)

    def branch_features(self, blocks: List[torch.Tensor],
                        needed: Dict[str, List[int]]
                        ) -> Dict[str, Dict[int, torch.Tensor]]:
        """branch -> block -> ``(B, D)`` features of the blocks each branch
        needs (one backbone pass per branch, or one in all for a single
        backbone)."""
        out = {b: {} for b in BRANCHES}
        if self.backbone_mode == 'separate':
            for branch in BRANCHES:
                ids = needed[branch]
                x = self._trunk(branch, torch.cat([blocks[i] for i in ids]))
                for i, part in zip(ids, x.split([len(blocks[i])
                                                 for i in ids])):
                    out[branch][i] = self._project(branch, part)
            return out
        ids = sorted(set(i for b in BRANCHES for i in needed[b]))
        x = self._trunk('balanced', torch.cat([blocks[i] for i in ids]))
        shared = dict(zip(ids, x.split([len(blocks[i]) for i in ids])))
        for branch in BRANCHES:
            for i in needed[branch]:
                out[branch][i] = self._project(branch, shared[i])
        return out

    def extract_feat(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """branch -> ``(N, D)`` features of the same images."""
        feats = self.branch_features([inputs], {b: [0] for b in BRANCHES})
        return {b: feats[b][0] for b in BRANCHES}

    # ------------------------------------------------------------------
    # modes
    # ------------------------------------------------------------------
    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        if mode == 'tensor':
            return self.head(self.extract_feat(inputs))
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> dict:
        total, num = inputs.size(0), self.num_streams
        if total % num or len(data_samples) != total:
            raise ValueError(
                f'COMICClassifier: a training batch of {total} samples '
                f'cannot hold {num} blocks of B (branch_streams='
                f'{self.branch_streams}): use COMICSampler with the '
                'dataloader batch_size = number of streams x '
                'batch_size_per_stream.')
        size = total // num
        blocks = list(inputs.split(size))
        stream_samples = [data_samples[i * size:(i + 1) * size]
                          for i in range(num)]
        s_b = self.branch_streams['balanced']
        needed = {
            b: sorted({self.branch_streams[b], s_b})
            for b in BRANCHES
        }
        feats = self.branch_features(blocks, needed)
        return self.head.loss(feats, stream_samples, self.branch_streams)

    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        return self.head.predict(self.extract_feat(inputs), data_samples,
                                 **kwargs)
