import logging
from typing import Optional, Union

import torch
from mmengine import dist
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS
from mmpretrain.utils import get_ori_model

from ...datasets.samplers.balance_mix_sampler import BalanceMixSampler
from ...datasets.samplers.minority_sampler import (class_confidences,
                                                   confidence_sums)
from ...models.utils.balance_mix_preprocessor import \
    BalanceMixDataPreprocessor
from .hook_utils import (derive_seed, find_recording_head, format_vector,
                         shared_seed, write_json_history)
from .label_refinement_hook import LabelRefinementHook
from .stateful_hook import StatefulHook

DATA_BATCH = Optional[Union[dict, tuple, list]]

HISTORY_JSON = 'balancemix.json'
_STATE_VERSION = 2
_MIX_SALT = 0x4D495845  # 'MIXE': the mixing draws
#: arguments of the label-wise management, now LabelRefinementHook's
_MOVED = ('warmup_epochs', 'tau', 'use_clean', 'use_relabel', 'use_ambiguous',
          'pass_pipeline', 'view_transforms', 'pass_batch_size',
          'pass_num_workers', 'view_max_shift', 'view_min_scale', 'view_flip',
          'gmm_cfg')


@HOOKS.register_module()
class BalanceMixHook(StatefulHook):
    """BalanceMix's minority sampling and mixing (Song et al. 2024,
    Algorithm 1): refreshes the minority sampler once per epoch, Eq. (2)-(4),
    and seeds the epoch's mixing draws, Eq. (5).

    The confidences of Eq. (2) come from the refinement pass of a
    :class:`LabelRefinementHook` when one ran this epoch (the paper's
    label-wise management, Eq. (6)-(10), which BalanceMix adds on top),
    else from the epoch's training predictions recorded by the head (the
    mixed images against the random images' observed labels; ``lam >=
    0.5``). Confidence sums are all-reduced: every rank holds the same
    sampling probabilities. The per-class sampling mass of every epoch (the
    paper's Figure 6) goes to ``log_dir/balancemix.json``; the sampler's
    state to the checkpoint. Notes and results:
    ``configs/balancemix/README.md``.

    Needs ``train_dataloader.sampler = BalanceMixSampler(batch_size_per_half
    = B)`` with ``batch_size = 2B`` and ``model.data_preprocessor =
    BalanceMixDataPreprocessor``.

    Args:
        seed (int, optional): Seed of the mixing draws (mixed with the epoch
            and rank); the runner's when None.

    Examples:
        >>> custom_hooks = [
        ...     dict(type='LabelStoreHook'),
        ...     dict(type='LabelRefinementHook', warmup_epochs=10),
        ...     dict(type='BalanceMixHook')]
    """

    # after a LabelRefinementHook (NORMAL): its pass feeds the sampler
    priority = 'BELOW_NORMAL'
    ckpt_key = 'balance_mix'
    CONSUMER = 'BalanceMixHook'

    def __init__(self, seed: Optional[int] = None, **moved):
        if moved:
            unknown = sorted(set(moved) - set(_MOVED))
            if unknown:
                raise TypeError(f'BalanceMixHook got unexpected arguments '
                                f'{unknown}.')
            raise TypeError(
                f'BalanceMixHook: {sorted(moved)} belong to the label-wise '
                'management, now its own hook: add dict(type='
                "'LabelRefinementHook', ...) with them (use_clean=False: "
                'leave it out).')
        self.seed = seed
        self.sampler: Optional[BalanceMixSampler] = None
        self._head = None
        self._sums: Optional[torch.Tensor] = None
        self._seed: Optional[int] = None
        self._resumed_state: Optional[dict] = None

    def before_train(self, runner) -> None:
        """Check the pieces, restore a resumed state, start recording."""
        from mmengine.runner import IterBasedTrainLoop
        if isinstance(getattr(runner, 'train_loop', None),
                      IterBasedTrainLoop):
            raise TypeError('BalanceMixHook updates per epoch: it needs an '
                            'epoch-based training loop.')
        self.sampler = _check_sampler(runner)
        _check_preprocessor(runner)
        self._seed = shared_seed(self.seed, runner)
        self.restore_resumed_state()
        if self.sampler.minority is not None:
            self._head = find_recording_head(runner.model, 'BalanceMixHook')
            self._head.enable_train_predictions(self.CONSUMER)
        print_log(
            f'BalanceMixHook: B={self.sampler.batch_size_per_half} per half, '
            f'{self.sampler.steps} steps per epoch, minority sampling '
            f'{"on" if self.sampler.minority is not None else "off"}.',
            'current', logging.INFO)

    def after_train(self, runner) -> None:
        if self._head is not None:
            self._head.disable_train_predictions(self.CONSUMER)

    def before_train_epoch(self, runner) -> None:
        """Seed the epoch's mixing draws by (seed, epoch, rank): a resumed
        run draws what the interrupted one would have drawn."""
        self._sums = None
        if self._head is not None:
            self._head.pop_train_predictions(self.CONSUMER)  # drop stale
        get_ori_model(runner.model).data_preprocessor.mixer.reseed(
            derive_seed(self._seed, int(runner.epoch), _MIX_SALT,
                        dist.get_rank()))

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Accumulate the confidence sums of the step's (mixed-image)
        predictions against the random images' observed labels."""
        if self._head is None:
            return
        labels_all = self.sampler.minority.labels
        for record in self._head.pop_train_predictions(self.CONSUMER):
            idx = record.get('sample_idx')
            if idx is None:
                raise KeyError(
                    'BalanceMixHook: the head recorded predictions without '
                    "sample_idx; keep 'sample_idx' in the meta_keys of "
                    'PackMultiLabelInputs.')
            # summed on the logits' device (the labels move there): no
            # copy of the logits per step
            probs = record['logits'].detach().float().sigmoid()
            sums = confidence_sums(probs, labels_all[idx.cpu()])
            self._sums = sums if self._sums is None else self._sums + sums

    def after_train_epoch(self, runner) -> None:
        """Update the minority sampler (Algorithm 1, line 17)."""
        if self.sampler is None or self.sampler.minority is None:
            return
        epoch = int(runner.epoch) + 1  # epochs done
        minority = self.sampler.minority
        pass_probs = _refinement_pass_probs(runner, epoch)
        if pass_probs is not None:  # identical on every rank already
            sums = confidence_sums(pass_probs, minority.labels)
            source = 'refinement pass'
        else:
            sums = self._sums if self._sums is not None else torch.zeros(
                (4, minority.labels.size(1)), dtype=torch.float64)
            if dist.get_world_size() > 1:
                dist.all_reduce(sums, op='sum')
            source = 'training predictions'
        self._sums = None
        minority.update_class_confidences(*class_confidences(sums), epoch)
        mass, uniform = minority.class_mass(), minority.uniform_class_mass()
        hub = getattr(runner, 'message_hub', None)
        if hub is not None:
            hub.update_info('balancemix/class_mass', mass.tolist())
        print_log(
            f'BalanceMixHook: epoch {epoch}: minority sampler updated from '
            f'the {source}; P(k) {format_vector(minority.presence)}; A(k) '
            f'{format_vector(minority.absence)}; class mass / uniform '
            f'{format_vector(mass / uniform)}.', 'current', logging.INFO)
        write_json_history(runner, HISTORY_JSON, self.history_dict(runner))

    def history_dict(self, runner) -> dict:
        """The minority sampler's per-class mass of every epoch (Fig. 6)."""
        minority = self.sampler.minority
        history = minority.history
        metainfo = getattr(runner.train_dataloader.dataset, 'metainfo',
                           None) or {}
        uniform = minority.uniform_class_mass()
        classes = metainfo.get('classes') or [
            str(k) for k in range(len(uniform))
        ]
        return dict(minority_sampling=dict(
            classes=list(classes),
            uniform_class_mass=uniform.tolist(),
            epochs=history['epochs'],
            class_mass=history['class_mass'].tolist()))

    # ------------------------------------------------------------------
    # checkpointing (StatefulHook)
    # ------------------------------------------------------------------
    def is_set_up(self) -> bool:
        return self.sampler is not None

    def state_dict(self) -> dict:
        return dict(version=_STATE_VERSION, sampler=self.sampler.state_dict())

    def apply_state(self, state: dict) -> None:
        if state.get('sampler') is not None:
            self.sampler.load_state_dict(state['sampler'])


def _refinement_pass_probs(runner, epoch: int) -> Optional[torch.Tensor]:
    """The probabilities of a LabelRefinementHook's pass of this epoch."""
    for hook in runner.hooks:
        if isinstance(hook, LabelRefinementHook) and hook.last_pass and \
                hook.last_pass[0] == epoch:
            return hook.last_pass[1]
    return None


def _check_sampler(runner) -> BalanceMixSampler:
    loader = runner.train_dataloader
    sampler = getattr(loader, 'sampler', None)
    if not isinstance(sampler, BalanceMixSampler):
        raise TypeError(
            'BalanceMixHook needs train_dataloader.sampler = '
            "dict(type='BalanceMixSampler', batch_size_per_half=B) and "
            'train_dataloader.batch_size = 2B; the sampler is '
            f'{type(sampler).__name__}.')
    batch_size = getattr(loader, 'batch_size', None)
    if batch_size != sampler.expected_batch_size:
        raise ValueError(
            'BalanceMixHook: train_dataloader.batch_size must be 2 x '
            'BalanceMixSampler.batch_size_per_half (B random + B '
            f'minority samples per batch); got batch_size={batch_size} '
            f'and batch_size_per_half={sampler.batch_size_per_half}.')
    return sampler


def _check_preprocessor(runner) -> None:
    pre = getattr(get_ori_model(runner.model), 'data_preprocessor', None)
    if not isinstance(pre, BalanceMixDataPreprocessor):
        raise TypeError(
            'BalanceMixHook needs model.data_preprocessor = '
            "dict(type='BalanceMixDataPreprocessor', ...) to mix the "
            'random and minority halves of each batch, Eq. (5); the '
            f'model has {type(pre).__name__}.')
