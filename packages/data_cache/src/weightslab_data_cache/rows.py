"""Sample-table upserts as patches: keys + the columns each patch sets.

A patch is keyed by ``(split code, sample-id code)``. Every column remembers which rows it
sets (``set`` mask; ``None`` = all), so an update of one tag never resets the others.
Folding patches (``fold``) applies them in order, last write wins per row and column, and
keeps rows in the order they first appeared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from weightslab.store import StoredRows

from weightslab_data_cache import columns

# Column keys: ("label", ""), ("discarded", ""), ("tag", name), ("cat", name), ("meta", name).
ColumnKey = tuple[str, str]
KIND_STORAGE = {"label": "value", "discarded": "bool", "tag": "bool", "cat": "str", "meta": "value"}


@dataclass
class Column:
    values: np.ndarray  # float64 | bool | object, one entry per patch row
    set: np.ndarray | None = None  # bool mask of the rows this patch sets; None = all

    def mask(self) -> np.ndarray:
        return np.ones(self.values.shape[0], dtype=bool) if self.set is None else self.set


@dataclass
class RowPatch:
    split: np.ndarray  # int64 codes into the names dictionary
    sid: np.ndarray  # int64 codes into the sample-id dictionary
    columns: dict[ColumnKey, Column] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.sid.shape[0])


def columns_of(rows: StoredRows) -> dict[ColumnKey, np.ndarray]:
    """Private copies of the columns ``rows`` provides (None = not provided), length-checked.

    Cheap enough for the caller's thread: one array copy per column; ``normalized`` (dtype
    conversion, which may be per-value Python work) runs later on the flusher thread.
    """
    n = len(rows.sample_id)
    raw: dict[ColumnKey, object] = {("label", ""): rows.label, ("discarded", ""): rows.discarded}
    raw.update({("tag", k): v for k, v in (rows.tags or {}).items()})
    raw.update({("cat", k): v for k, v in (rows.categories or {}).items()})
    raw.update({("meta", k): v for k, v in (rows.metadata or {}).items()})
    out: dict[ColumnKey, np.ndarray] = {}
    for key, values in raw.items():
        if values is None:
            continue
        arr = np.array(values, copy=True)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.shape[0] != n:
            raise ValueError(f"row column {key[0]} {key[1]!r} has {arr.shape[0]} values for {n} rows")
        out[key] = arr
    return out


def normalized(raw: dict[ColumnKey, np.ndarray]) -> dict[ColumnKey, Column]:
    """Columns with the dtype their kind stores (see ``columns.normalize``)."""
    return {key: Column(columns.normalize(values, KIND_STORAGE[key[0]])) for key, values in raw.items()}


def concat(patches: list[RowPatch]) -> RowPatch:
    """One patch with the rows of ``patches`` in order (duplicates kept; ``fold`` resolves them)."""
    if len(patches) == 1:
        return patches[0]
    keys: list[ColumnKey] = []
    for p in patches:
        keys.extend(k for k in p.columns if k not in keys)
    out = RowPatch(np.concatenate([p.split for p in patches]), np.concatenate([p.sid for p in patches]))
    for key in keys:
        present = [p.columns[key].values for p in patches if key in p.columns]
        dtype = columns.unify(present)
        values, masks = [], []
        for p in patches:
            col = p.columns.get(key)
            if col is None:
                values.append(columns.default_fill(dtype, len(p)))
                masks.append(np.zeros(len(p), dtype=bool))
            else:
                values.append(columns.as_dtype(col.values, dtype))
                masks.append(col.mask())
        mask = np.concatenate(masks)
        out.columns[key] = Column(np.concatenate(values), None if mask.all() else mask)
    return out


def fold(patch: RowPatch) -> RowPatch:
    """Resolve duplicate keys: last write wins per column; rows in first-seen order."""
    n = len(patch)
    if n == 0:
        return patch
    keys = (patch.split.astype(np.int64) << 32) | patch.sid.astype(np.int64)
    if n < 2 or bool((keys[1:] > keys[:-1]).all()):
        # No key repeats (e.g. new rows, coded in order): nothing to resolve, and no sort of a
        # million keys whose temporaries the allocator keeps long after they are freed.
        return patch
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(uniq.shape[0], dtype=np.int64)
    rank[order] = np.arange(uniq.shape[0])
    row_of = rank[inverse.reshape(-1)]
    firsts = first[order]
    out = RowPatch(patch.split[firsts], patch.sid[firsts])
    size = uniq.shape[0]
    for key, col in patch.columns.items():
        mask = col.mask()
        pos, vals = row_of[mask], col.values[mask]
        # keep the last occurrence of each row
        rev_unique, rev_index = np.unique(pos[::-1], return_index=True)
        last = pos.shape[0] - 1 - rev_index
        dtype = columns.unify([col.values])
        values = columns.default_fill(dtype, size)
        values[rev_unique] = vals[last]
        is_set = np.zeros(size, dtype=bool)
        is_set[rev_unique] = True
        out.columns[key] = Column(values, None if is_set.all() else is_set)
    return out


def to_stored(patch: RowPatch, names: np.ndarray, ids: np.ndarray) -> StoredRows:
    """A folded patch as the experiment's ``StoredRows`` (unset cells get their defaults)."""
    n = len(patch)
    cols = patch.columns

    def value_column(key: ColumnKey, default_dtype: str) -> np.ndarray:
        col = cols.get(key)
        return columns.default_fill(default_dtype, n) if col is None else col.values

    return StoredRows(
        split=names[patch.split],
        sample_id=ids[patch.sid],
        label=value_column(("label", ""), "float64"),
        discarded=value_column(("discarded", ""), "bool").astype(bool),
        tags={name: c.values.astype(bool) for (kind, name), c in cols.items() if kind == "tag"},
        categories={name: c.values for (kind, name), c in cols.items() if kind == "cat"},
        metadata={name: c.values for (kind, name), c in cols.items() if kind == "meta"},
    )
