"""Column values <-> HDF5 datasets: numbers stay numeric, text is variable-length UTF-8.

Encodings (attribute ``enc`` of a column group):

* ``f8``   float64 (NaN = unset),
* ``bool`` booleans,
* ``str``  UTF-8 strings plus an optional ``null`` mask for ``None``,
* ``json`` anything else in an object column (numbers, lists, dicts), one JSON text per value.
  Never pickle.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

log = logging.getLogger("weightslab.data_cache")

STR = h5py.string_dtype("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    log.warning("storing a %s value as its text (not JSON-serialisable)", type(value).__name__)
    return str(value)


def to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, allow_nan=True)


def object_array(items: Sequence[Any]) -> np.ndarray:
    """1-D object array holding ``items`` as they are (no broadcasting of nested sequences)."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def normalize(values: Any, kind: str) -> np.ndarray:
    """A private copy of one row column with the dtype its kind stores.

    ``kind``: ``bool`` (tags, discarded), ``str`` (categories: text or None) or
    ``value`` (labels, metadata: float64 when numeric, else object).
    """
    arr = np.asarray(values)
    if kind == "bool":
        return np.array(arr, dtype=bool, copy=True).reshape(-1)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if kind == "str":
        return object_array([None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                             for v in arr.reshape(-1).tolist()])
    if arr.ndim == 1 and arr.dtype.kind in "iufb":
        return np.array(arr, dtype=np.float64, copy=True)
    if arr.ndim > 1:
        return object_array([row.tolist() if isinstance(row, np.ndarray) else row for row in arr])
    return object_array(arr.tolist() if arr.dtype.kind != "O" else list(arr))


def unify(arrays: list[np.ndarray]) -> str:
    """Common dtype name for concatenation: ``float64``, ``bool`` or ``object``."""
    kinds = {a.dtype.kind for a in arrays}
    if kinds <= {"b"}:
        return "bool"
    if kinds <= {"f", "i", "u"}:
        return "float64"
    return "object"


def as_dtype(arr: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "object" and arr.dtype != object:
        return object_array(arr.tolist())
    return arr.astype(dtype, copy=False)


def default_fill(dtype: str, size: int) -> np.ndarray:
    if dtype == "bool":
        return np.zeros(size, dtype=bool)
    if dtype == "float64":
        return np.full(size, np.nan)
    return np.full(size, None, dtype=object)


def encode(values: np.ndarray) -> tuple[str, np.ndarray, np.ndarray | None]:
    """(encoding, data to store, null mask or None)."""
    if values.dtype.kind == "b":
        return "bool", values, None
    if values.dtype.kind in "iuf":
        return "f8", values.astype(np.float64, copy=False), None
    items = values.tolist()
    if all(v is None or isinstance(v, str) for v in items):
        null = np.fromiter((v is None for v in items), dtype=bool, count=len(items))
        data = object_array(["" if v is None else v for v in items])
        return "str", data, (null if null.any() else None)
    return "json", object_array([to_json(v) for v in items]), None


def decode(enc: str, data: np.ndarray, null: np.ndarray | None) -> np.ndarray:
    if enc == "bool":
        return data.astype(bool, copy=False)
    if enc == "f8":
        return data.astype(np.float64, copy=False)
    texts = [v.decode("utf-8") if isinstance(v, bytes) else v for v in data.tolist()]
    if enc == "json":
        return object_array([json.loads(t) for t in texts])
    out = object_array(texts)
    if null is not None:
        out[null.astype(bool)] = None
    return out
