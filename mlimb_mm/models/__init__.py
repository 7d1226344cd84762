from . import heads, losses, necks, utils  # noqa: F401
