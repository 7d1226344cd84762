"""Small helpers shared by the datasets for the tri-state label convention:
1 positive, 0 negative, -1 unknown, stored as ``np.int8``; the many /
medium / few-shot class groups shared by the long-tailed subsets and the
metrics; and the reading of annotation files with errors that name them."""
import json
from typing import Any, Dict, Sequence, Tuple, Union

import numpy as np
from mmengine.fileio import load

POSITIVE, NEGATIVE, UNKNOWN = 1, 0, -1

#: The many / medium / few-shot group names, in the order they are reported.
GROUP_NAMES = ('many', 'medium', 'few')


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


def load_annotation_file(path: str) -> Any:
    """``mmengine.load(path)`` (JSON, YAML or pickle, by suffix), raising a
    ``ValueError`` that names the file when it cannot be parsed: the
    parsers' own messages (e.g. ``Expecting value: line 1 column 1``) do
    not say which file they read."""
    try:
        return load(path)
    except OSError:
        raise  # a missing or unreadable file: the message names it
    except Exception as err:
        raise ValueError(f'cannot parse the annotation file {path}: '
                         f'{type(err).__name__}: {err}') from err


def read_json_file(path: str, what: str) -> Any:
    """``json.load`` of the local file ``path``; a file that is not valid
    JSON raises a ``ValueError`` naming ``what`` and the file."""
    with open(path, 'r') as f:
        try:
            return json.load(f)
        except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
            raise ValueError(f'{what} {path!r} is not valid JSON: '
                             f'{err}') from err


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


def long_tail_groups(
        class_counts: Union[Sequence[int], np.ndarray],
        thresholds: Tuple[int, int] = (20, 100)) -> Dict[str, np.ndarray]:
    """Split classes into many / medium / few shot groups by training count.

    With ``thresholds=(low, high)``: ``many`` has the classes with
    ``count > high``, ``medium`` those with ``low <= count <= high`` and
    ``few`` those with ``count < low``. ``(20, 100)`` is the split of the
    DB-loss and COMIC papers; BalanceMix uses ``(1000, 10000)``.

    Returns:
        dict: ``many``, ``medium``, ``few`` -> sorted int64 class indices.
    """
    low, high = thresholds
    if low > high:
        raise ValueError(f'group thresholds must be (low, high) with low <= '
                         f'high, got {tuple(thresholds)}.')
    counts = np.asarray(class_counts)
    if counts.ndim != 1:
        raise ValueError('class_counts must be 1-D, got shape '
                         f'{counts.shape}.')
    return dict(
        many=np.flatnonzero(counts > high),
        medium=np.flatnonzero((counts >= low) & (counts <= high)),
        few=np.flatnonzero(counts < low))
