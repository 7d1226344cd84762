"""Small helpers shared by the datasets for the tri-state label convention:
1 positive, 0 negative, -1 unknown, stored as ``np.int8``."""
import numpy as np

POSITIVE, NEGATIVE, UNKNOWN = 1, 0, -1


def tristate_from_positives(positives, num_classes, default=NEGATIVE):
    """Tri-state vector with ``positives`` set to 1 and the rest ``default``.

    Raises:
        ValueError: if a positive index is outside ``[0, num_classes)``.
    """
    positives = np.asarray(positives, dtype=np.int64).reshape(-1)
    if positives.size and (positives.min() < 0
                           or positives.max() >= num_classes):
        raise ValueError(f'label index out of range [0, {num_classes}): '
                         f'{positives.tolist()}')
    tristate = np.full(num_classes, default, dtype=np.int8)
    tristate[positives] = POSITIVE
    return tristate


def check_tristate(tristate, num_classes, where):
    """Validate one tri-state vector; ``where`` names the sample at fault."""
    tristate = np.asarray(tristate)
    if tristate.shape != (num_classes, ):
        raise ValueError(f'{where}: expected {num_classes} labels, got shape '
                         f'{tristate.shape}.')
    bad = ~np.isin(tristate, (POSITIVE, NEGATIVE, UNKNOWN))
    if bad.any():
        raise ValueError(f'{where}: labels must be 1, 0 or -1; got '
                         f'{np.unique(tristate[bad]).tolist()}.')
    return tristate.astype(np.int8)


def check_missing_as(name: str, missing_as: str, applies: bool,
                     where: str) -> None:
    """Check a wrapper's ``missing_as`` option: ``'unknown'`` (-1) or
    ``'negative'`` (0), the latter only where it ``applies`` (``where``
    names that setting in the error)."""
    if missing_as not in ('unknown', 'negative'):
        raise ValueError(f"{name}: missing_as must be 'unknown' or "
                         f"'negative', got {missing_as!r}.")
    if missing_as != 'unknown' and not applies:
        raise ValueError(f'{name}: missing_as={missing_as!r} applies to '
                         f'{where} only.')
