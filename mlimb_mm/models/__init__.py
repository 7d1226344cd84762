from . import heads, losses, necks, utils  # noqa: F401
from . import classifiers  # noqa: F401
