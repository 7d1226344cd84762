"""The data preprocessor of BalanceMix's minority-augmented mixing, Eq. (5)
(Song et al. 2024)."""
from typing import Optional

import torch
from mmpretrain.models.utils.data_preprocessor import ClsDataPreprocessor
from mmpretrain.registry import MODELS

from .balance_mix import BalanceMix

__all__ = ['BalanceMixDataPreprocessor']


@MODELS.register_module()
class BalanceMixDataPreprocessor(ClsDataPreprocessor):
    """``ClsDataPreprocessor`` that mixes the random and the minority halves
    of a training batch, Eq. (5).

    mmpretrain's batch augments are called as ``aug(inputs, batch_score)``
    and must return a batch of the same size: they cannot drop the minority
    half nor see the data samples. In training mode this preprocessor splits
    the collated batch of ``2B`` samples (``B`` random, then ``B`` minority:
    the layout of :class:`~mlimb_mm.datasets.samplers.BalanceMixSampler`)
    into its halves, mixes inputs and ``gt_score`` pair by pair with
    :class:`~mlimb_mm.models.utils.BalanceMix` and returns the ``B`` data
    samples of the random half with the mixed ``gt_score``. Every other
    field (``label_weight``, ``gt_tristate``, ``sample_idx``) is the random
    image's, which dominates the mix (``lam >= 0.5``). Outside training it
    is a plain ``ClsDataPreprocessor``.

    Args:
        alpha (float): Beta parameter of Eq. (5). Defaults to 4.0.
        per_sample (bool): One ``lam`` per pair instead of one per batch.
            Defaults to False (mmpretrain's habit).
        seed (int, optional): Seed of the mixing generator; the global
            generator when None.
        **kwargs: ``ClsDataPreprocessor`` arguments (``mean``, ``std``,
            ``num_classes``, ``to_onehot`` ...). ``batch_augments`` is
            refused: Eq. (5) is this preprocessor's only batch augment.
    """

    def __init__(self,
                 alpha: float = 4.0,
                 per_sample: bool = False,
                 seed: Optional[int] = None,
                 **kwargs):
        if kwargs.get('batch_augments') is not None:
            raise ValueError(
                'BalanceMixDataPreprocessor mixes the random and minority '
                'halves itself (Eq. 5); do not set `batch_augments`.')
        super().__init__(**kwargs)
        self.mixer = BalanceMix(alpha=alpha, per_sample=per_sample,
                                seed=seed)

    @property
    def last_lam(self):
        """``lam`` of the last training batch (for logging)."""
        return self.mixer.last_lam

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        if not training:
            return data
        inputs, samples = data['inputs'], data.get('data_samples')
        if samples is None or len(samples) == 0 or \
                'gt_score' not in samples[0]:
            raise KeyError(
                'BalanceMixDataPreprocessor needs data samples with '
                '`gt_score` in training (PackMultiLabelInputs).')
        total = inputs.size(0)
        if total % 2 or len(samples) != total:
            raise ValueError(
                'BalanceMixDataPreprocessor: a training batch must hold 2B '
                f'samples (B random, then B minority), got {total}: use '
                'BalanceMixSampler with the dataloader batch_size = '
                '2 * batch_size_per_half.')
        half = total // 2
        scores = torch.stack([s.gt_score.float() for s in samples]).to(
            inputs.device)
        mixed, mixed_scores = self.mixer(inputs[:half], scores[:half],
                                            inputs[half:], scores[half:])
        kept = list(samples[:half])
        for sample, score in zip(kept, mixed_scores):
            sample.set_gt_score(score)
        data['inputs'] = mixed
        data['data_samples'] = kept
        return data

