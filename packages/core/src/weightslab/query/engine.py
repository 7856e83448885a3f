"""Evaluate query specs against a :class:`~weightslab.query.frame.Frame` with numpy.

A query runs filter (:mod:`.filtering`), then top-k and sort (:mod:`.ordering`), then page, or
groups (:mod:`.grouping`); :mod:`.histograms` bins a column or an order. This module composes
them and re-exports their public names (the import paths that existed before the split).

Semantics: missing values and ``not`` in :mod:`.filtering`; stable, NaN-last, numeric-aware
``sample_id`` sorting in :mod:`.ordering`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .coerce import as_filter as as_filter
from .coerce import as_query as as_query
from .coerce import describe_validation_error as describe_validation_error
from .errors import QueryError
from .filtering import filter_mask as filter_mask
from .filtering import select as select
from .frame import Frame
from .grouping import MAX_GROUPS as MAX_GROUPS
from .grouping import GroupRow as GroupRow
from .grouping import _aggregate_rows, _sort_groups
from .grouping import aggregate as aggregate
from .histograms import MAX_BINS as MAX_BINS
from .histograms import Histogram as Histogram
from .histograms import histogram_by_position as histogram_by_position
from .histograms import histogram_by_value as histogram_by_value
from .ordering import _top_k, page_of
from .ordering import sort_indices as sort_indices
from .ordering import top_k as top_k
from .spec import Query


@dataclass
class QueryResult:
    """``total``: rows in the result set (after filter and top_k); ``indices``: the requested
    page of row indices into the frame, in order. For grouped queries ``indices`` is empty,
    ``groups`` holds the page of group rows and ``total_groups`` their number."""

    total: int
    indices: np.ndarray
    offset: int = 0
    limit: int = 0
    groups: list[GroupRow] | None = None
    total_groups: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "total": self.total,
            "indices": self.indices.tolist(),
            "offset": self.offset,
            "limit": self.limit,
        }
        if self.groups is not None:
            out["groups"] = [g.to_dict() for g in self.groups]
            out["total_groups"] = self.total_groups
        return out


# -- queries ---------------------------------------------------------------------


def _result_rows(frame: Frame, q: Query) -> np.ndarray:
    idx = select(frame, q.filter)
    if q.top_k is not None:
        idx = _top_k(frame, idx, q.top_k)
    return idx


def run_query(frame: Frame, query: Query | Mapping[str, Any] | str) -> QueryResult:
    """Evaluate ``query``: filter, then top_k, then sort (partial, only what the page needs)
    and page. Without ``sort`` rows come in table order (or best-first after ``top_k``)."""
    q = as_query(query)
    if q.group is None and q.top_k is None:
        return _page(frame, q)
    idx = _result_rows(frame, q)
    offset, limit = q.page.offset, q.page.limit
    if q.group is not None:
        rows = _aggregate_rows(frame, idx, q.group)
        if q.sort:
            rows = _sort_groups(rows, q.group, q.sort)
        return QueryResult(total=len(idx), indices=np.zeros(0, dtype=np.int64), offset=offset, limit=limit,
                           groups=rows[offset : offset + limit], total_groups=len(rows))
    end = offset + limit
    order = sort_indices(frame, idx, q.sort, limit=end) if q.sort else idx[:end]
    return QueryResult(total=len(idx), indices=np.ascontiguousarray(order[offset:end]), offset=offset, limit=limit)


def _page(frame: Frame, q: Query) -> QueryResult:
    """An ungrouped query without ``top_k``: count the mask, then read the page a block at a time
    (:func:`.ordering.page_of`), never listing every matching row."""
    mask = None if q.filter is None else filter_mask(frame, q.filter)
    total = len(frame) if mask is None else int(np.count_nonzero(mask))
    offset, limit = q.page.offset, q.page.limit
    order = page_of(frame, mask, q.sort, offset + limit)
    return QueryResult(total=total, indices=np.ascontiguousarray(order[offset:]), offset=offset, limit=limit)


def ordered_indices(frame: Frame, query: Query | Mapping[str, Any] | str) -> np.ndarray:
    """Every row of the result set in query order, ignoring the page (for
    :func:`histogram_by_position` and edits by query)."""
    q = as_query(query)
    if q.group is not None:
        raise QueryError("group: ordered_indices needs an ungrouped query")
    idx = _result_rows(frame, q)
    return sort_indices(frame, idx, q.sort) if q.sort else idx
