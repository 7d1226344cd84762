import pytest
from mmengine.logging import MMLogger


@pytest.fixture
def warnings_log(monkeypatch):
    """The messages of the warnings logged through MMEngine's current
    logger during the test (they are still logged)."""
    messages = []
    logger = MMLogger.get_current_instance()
    original = logger.warning

    def capture(msg, *args, **kwargs):
        messages.append(str(msg))
        return original(msg, *args, **kwargs)

    monkeypatch.setattr(logger, 'warning', capture)
    return messages
