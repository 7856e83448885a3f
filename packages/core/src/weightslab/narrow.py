"""The narrowest exact dtype: int32 / float32 storage while every value fits, widened when one does not.

A million-row column costs 4 bytes a row instead of 8 as long as its values are exactly int32 or
float32 values (row numbers, ids of a numbering loader, float32 losses, class labels, step counts);
the first value that is not widens the whole column, so the stored values are always the ones given.
Used by the sample table, the mislabel state, the signal history, loaders and the sample store.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FLOAT32_WHOLE = 1 << 24  # float32 holds every whole number up to here
_INT32 = np.iinfo(np.int32)


def fits_float32(values: np.ndarray) -> bool:
    """Whether every value is exactly a float32 (NaN and infinities included)."""
    kind = values.dtype.kind
    if kind == "b" or values.size == 0 or (kind == "f" and values.dtype.itemsize <= 4):
        return True
    if kind in "iu":
        return bool(-FLOAT32_WHOLE <= values.min() and values.max() <= FLOAT32_WHOLE)
    if kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):  # past float32's range: inf, not exact
            back = values.astype(np.float32).astype(values.dtype)
        return bool(((back == values) | np.isnan(values)).all())
    return False


def fits_int32(values: Any) -> bool:
    """Whether every (integer) value is an int32."""
    return not np.size(values) or bool(_INT32.min <= np.min(values) and np.max(values) <= _INT32.max)


def narrowed(values: np.ndarray) -> np.ndarray:
    """``values`` as a new int32 / float32 array when every value fits exactly, else as given."""
    kind = values.dtype.kind
    if kind in "iu" and values.dtype.itemsize > 4 and fits_int32(values):
        return values.astype(np.int32)
    if kind == "f" and fits_float32(values):
        return values.astype(np.float32)
    return values


def put(column: np.ndarray, where: Any, values: Any) -> np.ndarray:
    """``column[where] = values``, on a widened copy (int64 / float64) when an int32 / float32 column
    cannot hold them exactly; returns the column that now holds them."""
    if column.dtype == np.int32 and not fits_int32(values):
        column = column.astype(np.int64)
    elif column.dtype == np.float32 and not fits_float32(np.asarray(values)):
        column = column.astype(np.float64)
    column[where] = values
    return column
