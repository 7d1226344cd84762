import logging
from typing import Optional

import torch
from mmengine import dist
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...models.utils.comic import moving_vector_step
from .stateful_hook import StatefulHook

_STATE_VERSION = 1


def find_moving_head(model, who: str):
    """The module holding ``moving_vectors`` and ``pop_feature_means``
    (``COMICHead``); raises, naming ``who``, when there is none or
    several."""
    if is_model_wrapper(model):
        model = model.module
    found = [m for m in model.modules()
             if isinstance(getattr(m, 'moving_vectors', None), torch.Tensor)
             and callable(getattr(m, 'pop_feature_means', None))]
    if len(found) != 1:
        raise TypeError(
            f'{who} needs exactly one module with moving vectors '
            f'(COMICHead in COMICClassifier); {type(model).__name__} has '
            f'{len(found)}.')
    return found[0]


def check_stream_layout(runner, model, who: str) -> None:
    """Refuse a DataLoader batch that does not hold the model's stream
    blocks (``COMICSampler.expected_batch_size`` and the model's
    ``num_streams`` must agree)."""
    if is_model_wrapper(model):
        model = model.module
    loader = getattr(runner, 'train_dataloader', None)
    sampler = getattr(loader, 'sampler', None)
    num_streams = getattr(model, 'num_streams', 1)
    expected = getattr(sampler, 'expected_batch_size', None)
    if expected is None:
        if num_streams > 1:
            raise ValueError(
                f'{who}: the model trains its branches on {num_streams} '
                'blocks of each batch (branch_streams) but the sampler is '
                f'{type(sampler).__name__}; use COMICSampler.')
        return
    if getattr(sampler, 'num_streams', num_streams) != num_streams:
        raise ValueError(
            f'{who}: COMICSampler yields {sampler.num_streams} streams, the '
            f'model expects {num_streams} (branch_streams).')
    batch_size = getattr(loader, 'batch_size', expected)
    if batch_size != expected:
        raise ValueError(
            f'{who}: the train_dataloader batch_size is {batch_size}, '
            f'COMICSampler needs {expected} (streams x '
            'batch_size_per_stream).')


@HOOKS.register_module()
class MovingGradientHook(StatefulHook):
    """COMIC's moving vector (Zhang et al., ICCV 2023, Eq. (7)), kept for
    the head and tail branches of ``COMICHead``.

    After every training step ``e_t = mu * e_{t-1} + s_t``, with ``s_t``
    the batch-mean feature of each branch (the authors' code, as TDE; the
    paper calls it a moving average of the gradient), averaged over ranks
    (one all-reduce of ``2 x D`` numbers) so that ``e_t`` is identical on
    every rank. ``e_t`` lives in the head's ``moving_vectors`` buffer,
    which Eq. (10) reads in the next step and at inference; being equal on
    every rank, DDP's ``broadcast_buffers`` leaves it unchanged. It is
    saved with the model and in ``checkpoint['moving_gradient']`` with the
    step count; a resumed run continues it. ``before_train`` also checks
    that the DataLoader batches hold the model's stream blocks.

    Args:
        mu (float): Momentum ``mu``. Defaults to 0.9.
    """

    priority = 'NORMAL'
    ckpt_key = 'moving_gradient'

    def __init__(self, mu: float = 0.9):
        if not 0 <= mu < 1:
            raise ValueError(f'MovingGradientHook: mu must be in [0, 1), got '
                             f'{mu}.')
        self.mu = float(mu)
        self.steps = 0
        self._head = None
        self._resumed_state: Optional[dict] = None

    def before_train(self, runner) -> None:
        self._head = find_moving_head(runner.model, 'MovingGradientHook')
        check_stream_layout(runner, runner.model, 'MovingGradientHook')
        self._head.pop_feature_means()  # nothing from before training
        self.restore_resumed_state()

    def update(self, batch_means: torch.Tensor) -> torch.Tensor:
        """One step of Eq. (7) with the local ``(2, D)`` batch means (a
        collective when distributed); returns the new vectors."""
        means = batch_means.detach().float().clone()
        if dist.get_world_size() > 1:
            dist.all_reduce(means, op='mean')
        vectors = self._head.moving_vectors
        with torch.no_grad():
            vectors.copy_(moving_vector_step(vectors, means.to(vectors),
                                             self.mu))
        self.steps += 1
        return vectors

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if self._head is None:
            self._head = find_moving_head(runner.model, 'MovingGradientHook')
        means = self._head.pop_feature_means()
        if means is None:
            raise RuntimeError(
                'MovingGradientHook: the head computed no training features '
                'in this step (is the model a COMICClassifier?).')
        self.update(means)

    def after_train(self, runner) -> None:
        print_log(
            f'MovingGradientHook: {self.steps} updates; |e_t| (head, tail) '
            f'= {self._head.moving_vectors.norm(dim=1).tolist()}.',
            'current', logging.INFO)

    # ------------------------------------------------------------------
    # checkpointing (StatefulHook)
    # ------------------------------------------------------------------
    def is_set_up(self) -> bool:
        return self._head is not None

    def state_dict(self) -> dict:
        return dict(version=_STATE_VERSION, mu=self.mu, steps=self.steps,
                    vectors=self._head.moving_vectors.detach().cpu().clone())

    def apply_state(self, state: dict) -> None:
        vectors = torch.as_tensor(state['vectors'])
        held = self._head.moving_vectors
        if vectors.shape != held.shape:
            raise ValueError(
                f'MovingGradientHook: the checkpoint holds moving vectors of '
                f'shape {tuple(vectors.shape)}, the head {tuple(held.shape)}.')
        with torch.no_grad():
            held.copy_(vectors.to(held))
        self.steps = int(state.get('steps', 0))
