"""The devices of the device-parametrised tests (the ``device`` fixture of
``conftest.py``): the CPU, and CUDA marked ``cuda`` and skipped without a
GPU, so that ``pytest -m cuda`` runs only the CUDA variants. Also the
mixed-precision dtype of each device."""
import pytest
import torch

CUDA = pytest.param(
    'cuda',
    marks=[pytest.mark.cuda,
           pytest.mark.skipif(not torch.cuda.is_available(),
                              reason='no CUDA device')])
DEVICES = ['cpu', CUDA]


def amp_dtype(device) -> torch.dtype:
    """The autocast dtype users train with on ``device``: float16 (with a
    loss scaler) on a GPU, bfloat16 on the CPU (the only CPU autocast
    dtype MMEngine allows)."""
    return torch.float16 if torch.device(device).type == 'cuda' else \
        torch.bfloat16
