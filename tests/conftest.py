# pytest puts this folder on sys.path, so tests import the shared helpers
# (dist_utils, fake_datasets, devices) by name.
import pytest

from devices import DEVICES


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'cuda: the CUDA variant of a device-parametrised test '
        '(skipped without a GPU); `pytest -m cuda` runs only those.')


@pytest.fixture(params=DEVICES)
def device(request):
    """The device a test runs its component on: ``cpu``, and ``cuda``
    (marked ``cuda``, skipped when no GPU is available)."""
    import torch
    return torch.device(request.param)
