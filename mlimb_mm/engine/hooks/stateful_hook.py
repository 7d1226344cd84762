import logging
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log


class StatefulHook(Hook):
    """A hook whose training state goes into the checkpoint and comes back
    when the run resumes, like MMEngine's ``EMAHook``.

    The state is saved as ``checkpoint[ckpt_key]`` and restored only when
    the runner *resumes* (``load_from`` alone loads weights). MMEngine loads
    a resumed checkpoint before ``before_train``, i.e. often before the hook
    has set itself up: the state is then kept and applied when the subclass
    calls :meth:`restore_resumed_state` at the end of its set-up (and saved
    as it came if a checkpoint is written before that).

    Subclasses set ``ckpt_key`` and implement :meth:`state_dict`,
    :meth:`apply_state` (restore now) and :meth:`is_set_up`.
    """

    ckpt_key: str = ''

    def state_dict(self) -> dict:
        """The state to save (plain tensors, numbers, lists and dicts, so
        that ``torch.load(weights_only=True)`` reads it back)."""
        raise NotImplementedError

    def apply_state(self, state: dict) -> None:
        """Restore :meth:`state_dict` into a set-up hook."""
        raise NotImplementedError

    def is_set_up(self) -> bool:
        """Whether the hook can apply a state now."""
        return True

    def load_state_dict(self, state: dict) -> None:
        """Apply ``state`` now if the hook is set up, else keep it for
        :meth:`restore_resumed_state`."""
        if self.is_set_up():
            self.apply_state(state)
        else:
            self._resumed_state = state

    def restore_resumed_state(self) -> None:
        """Apply a state kept from a resumed checkpoint (call at the end of
        the set-up)."""
        state = getattr(self, '_resumed_state', None)
        if state is not None:
            self._resumed_state = None
            self.apply_state(state)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.is_set_up():
            checkpoint[self.ckpt_key] = self.state_dict()
        elif getattr(self, '_resumed_state', None) is not None:
            checkpoint[self.ckpt_key] = self._resumed_state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return
        state: Optional[dict] = checkpoint.get(self.ckpt_key)
        if state is None:
            print_log(
                f'{type(self).__name__}: the resumed checkpoint has no '
                f'`{self.ckpt_key}` state; it starts afresh.', 'current',
                logging.WARNING)
            return
        self.load_state_dict(state)
