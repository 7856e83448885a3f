"""Ordering: stable multi-key sort, partial sort for a page, top-k.

Sorting is stable (ties keep table order) and puts NaN/None last in both directions;
``sample_id`` sorts numeric-aware (``"2" < "10"``), other strings lexicographically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError

from .coerce import describe_validation_error
from .errors import QueryError
from .filtering import _nulls, select
from .frame import Frame, factorize
from .spec import Filter, SortKey, TopK

_PARTIAL_MIN_ROWS = 4096
_PAGE_BLOCK_ROWS = 1 << 16  # rows :func:`page_of` reads at a time: its temporaries stay ~1 MB


def _codes_key(codes: np.ndarray, ncodes: int, descending: bool) -> np.ndarray:
    """Codes with -1 = missing -> sort key with missing last."""
    key = codes.astype(np.int64, copy=True)
    missing = key < 0
    if descending:
        key = (ncodes - 1) - key
    key[missing] = ncodes
    return key


def _sort_key(frame: Frame, key: SortKey, idx: np.ndarray, where: str) -> np.ndarray:
    column = key.column
    arr = frame.column(column, field=where)
    if column == "sample_id":
        rank = frame.id_rank()[idx]
        return np.negative(rank, out=rank) if key.descending else rank
    if column == "split":
        names, codes = frame.split_codes()
        return _codes_key(codes[idx], len(names), key.descending)
    kind = frame.kind(column)
    sub = arr[idx]
    if kind == "numeric":
        # ``arr[idx]`` is a fresh copy, so negating in place is safe (and saves a pass). Floats keep
        # their width: a float32 column orders as its float64 values would, without a widened copy.
        if sub.dtype.kind != "f":
            sub = sub.astype(np.int64, copy=False)
        return np.negative(sub, out=sub) if key.descending else sub
    if kind == "bool":
        b = sub.astype(np.int8)
        return 1 - b if key.descending else b
    names, codes = factorize(sub)
    return _codes_key(codes, len(names), key.descending)


def _lexsort(keys: list[np.ndarray]) -> np.ndarray:
    if len(keys) == 1:
        return np.argsort(keys[0], kind="stable")
    return np.lexsort(keys[::-1])


def _candidates(keys: list[np.ndarray], pos: np.ndarray | None, k: int) -> np.ndarray:
    """Ascending positions (a subset of ``pos``, itself ascending; ``None`` = every position)
    that contain the first ``k`` rows of the stable order by ``keys``; at most ``k`` of them
    unless a float key hits NaN at the boundary."""
    primary = keys[0] if pos is None else keys[0][pos]
    if len(primary) <= k:
        return np.arange(len(primary), dtype=np.int64) if pos is None else pos
    kth = np.partition(primary, k - 1)[k - 1]
    if primary.dtype.kind == "f" and np.isnan(kth):
        return np.arange(len(primary), dtype=np.int64) if pos is None else pos
    before = np.flatnonzero(primary < kth)
    ties = np.flatnonzero(primary == kth)
    if pos is not None:
        before, ties = pos[before], pos[ties]
    need = k - len(before)
    if len(ties) > need:
        # Ties on the last key keep row order, so the first ``need`` ties are the ones.
        ties = _candidates(keys[1:], ties, need) if len(keys) > 1 else ties[:need]
    return np.sort(np.concatenate([before, ties]))


def _order(keys: list[np.ndarray], m: int, k: int | None) -> np.ndarray:
    """Stable order (positions 0..m-1) by ``keys`` (first = primary), only the first ``k``."""
    if not keys:
        return np.arange(m if k is None else min(k, m), dtype=np.int64)
    if k is not None and k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k is not None and m >= _PARTIAL_MIN_ROWS and k <= m // 8:
        # Partial sort: keep only rows that can reach the first k, then sort those.
        cand = _candidates(keys, None, k)
        if len(cand) < m:
            sub_order = _lexsort([key[cand] for key in keys])
            return cand[sub_order][:k].astype(np.int64, copy=False)
    order = _lexsort(keys)
    if k is not None:
        order = order[:k]
    return order.astype(np.int64, copy=False)


def sort_indices(frame: Frame, indices: np.ndarray, sort: Sequence[SortKey | Mapping[str, Any]],
                 limit: int | None = None) -> np.ndarray:
    """``indices`` reordered by ``sort`` (stable, NaN/None last); only the first ``limit``
    when given (a partial sort: much faster for a page of a large selection)."""
    keys_spec: list[SortKey] = []
    for i, k in enumerate(sort):
        try:
            keys_spec.append(k if isinstance(k, SortKey) else SortKey.model_validate(k))
        except ValidationError as e:
            raise QueryError(f"invalid sort: {describe_validation_error(e, f'sort.{i}')}") from None
    idx = np.asarray(indices, dtype=np.int64)
    keys = [_sort_key(frame, k, idx, f"sort[{i}].column") for i, k in enumerate(keys_spec)]
    return idx[_order(keys, len(idx), limit)]


def _mask_rows(mask: np.ndarray | None, start: int, stop: int) -> np.ndarray:
    """Ascending rows in ``start:stop`` that ``mask`` keeps (every row when ``mask`` is None)."""
    if mask is None:
        return np.arange(start, stop, dtype=np.int64)
    rows = np.flatnonzero(mask[start:stop])
    rows += start
    return rows


def page_of(frame: Frame, mask: np.ndarray | None, sort: Sequence[SortKey], end: int) -> np.ndarray:
    """The first ``end`` rows of ``frame`` that ``mask`` keeps, in the stable order by ``sort``
    (table order without one), the same rows as ``sort_indices(frame, flatnonzero(mask), sort,
    limit=end)``.

    It reads the table a block of rows at a time, so a page of a million-row table needs no
    million-row index or key arrays: the first query after a change would otherwise spend most
    of its time having the kernel hand it fresh pages. Each block keeps only the rows that can
    reach the first ``end`` of its own order; a row among the first ``end`` overall is among the
    first ``end`` of its block (the block's order is the overall order restricted to it), so the
    page is the first ``end`` of what the blocks kept."""
    n = len(frame) if mask is None else len(mask)
    if end <= 0 or n == 0:  # still checks the sort columns exist
        return sort_indices(frame, np.zeros(0, dtype=np.int64), sort, limit=0)
    if not sort:
        found: list[np.ndarray] = []
        need = end
        for start in range(0, n, _PAGE_BLOCK_ROWS):
            rows = _mask_rows(mask, start, min(n, start + _PAGE_BLOCK_ROWS))[:need]
            found.append(rows)
            need -= len(rows)
            if need <= 0:
                break
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    kept = []
    for start in range(0, n, _PAGE_BLOCK_ROWS):
        rows = _mask_rows(mask, start, min(n, start + _PAGE_BLOCK_ROWS))
        if len(rows) > end:
            keys = [_sort_key(frame, k, rows, f"sort[{i}].column") for i, k in enumerate(sort)]
            rows = rows[_candidates(keys, None, end)]
        kept.append(rows)
    return sort_indices(frame, np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64), sort, limit=end)


def _top_k(frame: Frame, idx: np.ndarray, top: TopK) -> np.ndarray:
    arr = frame.column(top.column, field="top_k.column")
    kind = frame.kind(top.column)
    if kind != "bool":
        idx = idx[~_nulls(arr[idx], kind)]
    return sort_indices(frame, idx, [SortKey(column=top.column, descending=top.largest)], limit=top.k)


def top_k(frame: Frame, column: str, k: int, *, largest: bool = True,
          filter: Filter | Mapping[str, Any] | str | None = None) -> np.ndarray:
    """Row indices of the ``k`` rows with the largest (smallest) non-missing ``column``,
    best first (ties in table order)."""
    try:
        spec = TopK(column=column, k=k, largest=largest)
    except ValidationError as e:
        raise QueryError(f"invalid top_k: {describe_validation_error(e)}") from None
    return _top_k(frame, select(frame, filter), spec)
