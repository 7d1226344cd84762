"""BalanceMix's minority-augmented mixing, Eq. (5) (Song et al. 2024).

A batch ``B_R`` of the random sampler and a batch ``B_M`` of the same size
of the minority sampler are mixed pair by pair::

    lam' ~ Beta(alpha, alpha),   lam = max(lam', 1 - lam')
    x_mix = lam x_R + (1 - lam) x_M,   y_mix = lam y_R + (1 - lam) y_M

What the implementation decides where the paper is silent (one ``lam`` per
batch, the label weights of the mixed sample) is in
``configs/balancemix/README.md``.
"""
from typing import Optional, Tuple, Union

import torch
from mmpretrain.registry import BATCH_AUGMENTS

__all__ = ['sample_balance_lambda', 'balance_mix', 'BalanceMix']


def sample_balance_lambda(alpha: float,
                          size: int = 1,
                          generator: Optional[torch.Generator] = None,
                          dtype: torch.dtype = torch.float32,
                          device=None) -> torch.Tensor:
    """``size`` draws of ``lam = max(lam', 1 - lam')``, ``lam' ~
    Beta(alpha, alpha)``, Eq. (5), in ``[0.5, 1]``.

    The Beta draw is ``G1 / (G1 + G2)`` with ``G1, G2 ~ Gamma(alpha, 1)``
    made with ``torch._standard_gamma`` on CPU from ``generator`` (so one
    seeded generator reproduces the draws on any device), then moved to
    ``device``.
    """
    if not alpha > 0:
        raise ValueError(f'BalanceMix: alpha must be > 0, got {alpha}.')
    conc = torch.full((2, int(size)), float(alpha), dtype=torch.float64)
    gamma = torch._standard_gamma(conc, generator=generator)
    total = gamma.sum(0)
    lam = torch.where(total > 0, gamma[0] / total.clamp(min=1e-300),
                      torch.full_like(total, 0.5))
    lam = torch.maximum(lam, 1 - lam)
    return lam.to(dtype=dtype, device=device)


def balance_mix(inputs_r: torch.Tensor,
                targets_r: torch.Tensor,
                inputs_m: torch.Tensor,
                targets_m: torch.Tensor,
                alpha: float = 4.0,
                generator: Optional[torch.Generator] = None,
                per_sample: bool = False
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. (5): mix the random batch with the minority batch, pair ``i``
    with pair ``i``.

    Args:
        inputs_r (Tensor): ``(B, ...)`` images of the random sampler.
        targets_r (Tensor): ``(B, K)`` soft targets of the random sampler.
        inputs_m (Tensor): ``(B, ...)`` images of the minority sampler.
        targets_m (Tensor): ``(B, K)`` soft targets of the minority
            sampler.
        alpha (float): The Beta parameter. Defaults to 4 (the paper).
        generator (torch.Generator, optional): CPU generator of the draw
            (reproducible mixing); the global one when None.
        per_sample (bool): One ``lam`` per pair instead of one per batch.
            Defaults to False.

    Returns:
        tuple: the mixed inputs (dtype of ``inputs_r``), the mixed float
        targets and ``lam`` (a 0-d tensor, or ``(B,)`` with
        ``per_sample``), all on ``inputs_r``'s device.
    """
    if inputs_r.shape != inputs_m.shape:
        raise ValueError('BalanceMix: the random and minority batches must '
                         f'have one shape, got {tuple(inputs_r.shape)} and '
                         f'{tuple(inputs_m.shape)}.')
    if targets_r.shape != targets_m.shape or targets_r.dim() != 2 or \
            targets_r.size(0) != inputs_r.size(0):
        raise ValueError('BalanceMix: targets must be (B, K) of one shape '
                         f'matching the batch, got {tuple(targets_r.shape)} '
                         f'and {tuple(targets_m.shape)} for '
                         f'{inputs_r.size(0)} images.')
    batch = inputs_r.size(0)
    lam = sample_balance_lambda(alpha, batch if per_sample else 1,
                                generator, device=inputs_r.device)
    if not per_sample:
        lam = lam[0]
    work = inputs_r.dtype if inputs_r.is_floating_point() else torch.float32
    shape = (-1, ) + (1, ) * (inputs_r.dim() - 1) if per_sample else ()
    lam_x = lam.to(work).reshape(shape)
    inputs = lam_x * inputs_r.to(work) + (1 - lam_x) * inputs_m.to(
        device=inputs_r.device, dtype=work)
    if inputs_r.is_floating_point():
        inputs = inputs.to(inputs_r.dtype)
    lam_y = lam.reshape((-1, 1) if per_sample else ())
    t_r = targets_r.to(device=inputs_r.device).float()
    t_m = targets_m.to(device=inputs_r.device).float()
    targets = lam_y * t_r + (1 - lam_y) * t_m
    return inputs, targets, lam


@BATCH_AUGMENTS.register_module()
class BalanceMix:
    """Eq. (5) as an mmpretrain batch augment over **two** batches.

    Unlike mmpretrain's ``Mixup`` (``aug(inputs, scores)``, a batch mixed
    with its own permutation, ``lam`` in [0, 1]) it is called with the
    random batch and the minority batch and folds ``lam`` to [0.5, 1], so
    the random image dominates. It is meant for the BalanceMix training
    step, not for ``ClsDataPreprocessor(batch_augments=...)``.

    Targets are soft ``(B, K)`` scores (unknown labels given as 0: whether a
    label counts is decided by the weights). The label weights
    (reliabilities, Eq. (10), unknown-label and PLM masks) follow the
    random batch: when ``weights_r`` is given it is returned unchanged as
    the mixed batch's weights (``weights_m`` is accepted for symmetry and
    ignored).

    Args:
        alpha (float): The Beta parameter. Defaults to 4.0 (the paper).
        per_sample (bool): One ``lam`` per pair instead of one per batch
            (mmpretrain's habit). Defaults to False.
        seed (int, optional): Seed of the augment's own CPU generator
            (reproducible mixing); the global generator when None.
    """

    def __init__(self,
                 alpha: float = 4.0,
                 per_sample: bool = False,
                 seed: Optional[int] = None):
        if not float(alpha) > 0:
            raise ValueError(f'BalanceMix: alpha must be > 0, got {alpha}.')
        self.alpha = float(alpha)
        self.per_sample = bool(per_sample)
        self.seed = seed
        self.generator = None
        if seed is not None:
            self.generator = torch.Generator().manual_seed(int(seed))
        #: ``lam`` of the last call (for logging)
        self.last_lam: Optional[torch.Tensor] = None

    def reseed(self, seed: int) -> None:
        """Restart the augment's generator from ``seed`` (BalanceMixHook
        does it every epoch, from the run's seed and the epoch, so that a
        resumed run draws the same ``lam`` as the interrupted one)."""
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def __call__(
        self,
        inputs_r: torch.Tensor,
        targets_r: torch.Tensor,
        inputs_m: torch.Tensor,
        targets_m: torch.Tensor,
        weights_r: Optional[torch.Tensor] = None,
        weights_m: Optional[torch.Tensor] = None
    ) -> Union[Tuple[torch.Tensor, torch.Tensor], Tuple[torch.Tensor,
                                                        torch.Tensor,
                                                        torch.Tensor]]:
        """Mix the two batches.

        Returns:
            tuple: ``(inputs, targets)``, and ``weights_r`` as third item
            when ``weights_r`` is given.
        """
        inputs, targets, lam = balance_mix(inputs_r, targets_r, inputs_m,
                                           targets_m, self.alpha,
                                           self.generator, self.per_sample)
        self.last_lam = lam
        if weights_r is None:
            return inputs, targets
        if weights_r.shape != targets.shape:
            raise ValueError(f'BalanceMix: weights {tuple(weights_r.shape)}'
                             f' for targets {tuple(targets.shape)}.')
        return inputs, targets, weights_r

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(alpha={self.alpha}, per_sample='
                f'{self.per_sample}, seed={self.seed})')
