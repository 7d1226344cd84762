from . import heads, losses, necks  # noqa: F401
