import io
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

import mlimb_mm  # noqa: F401  (registers the allow-list)


def round_trip(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer)  # weights_only=True: torch's default


def test_mmengine_checkpoint_content_loads_with_weights_only():
    history = HistoryBuffer()
    history.update(0.5)
    history.update(0.25)
    checkpoint = dict(
        meta=dict(seed=np.int64(3), epoch=2, lr=np.float32(0.1),
                  counts=np.arange(4)),
        message_hub=dict(log_scalars={'train/loss': history}),
        state_dict={'w': torch.ones(2)})
    loaded = round_trip(checkpoint)
    assert loaded['meta']['seed'] == 3
    np.testing.assert_array_equal(loaded['meta']['counts'], np.arange(4))
    assert loaded['message_hub']['log_scalars']['train/loss'].mean() == \
        pytest.approx(0.375)


class RunsCode:

    def __reduce__(self):
        return (os.system, ('echo should-not-run', ))


class ReadsAnAttribute:

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


@pytest.mark.parametrize('payload', [RunsCode(), ReadsAnAttribute()])
def test_arbitrary_pickles_are_refused(payload):
    with pytest.raises((pickle.UnpicklingError, RuntimeError)):
        round_trip({'x': payload})
