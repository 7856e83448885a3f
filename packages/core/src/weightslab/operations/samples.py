"""Sample queries: filter + top-k + sort + page (or group), over a cached snapshot.

Queries arrive as text (the query box syntax), a JSON spec, a mapping or a
:class:`~weightslab.query.Query`; :func:`parse_query` turns each into a ``Query`` and names the
field on error.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from weightslab.operations._base import InvalidRequest, names, text
from weightslab.operations._frames import frame_cache, snapshot
from weightslab.operations.names import check_query_names

MAX_QUERY_TEXT = 100_000
MAX_COLUMNS = 1000
MAX_PAGE_OFFSET = 10**12

QueryLike = Any  # Query | Mapping | str (text or JSON) | None


@dataclass(frozen=True)
class SortKey:
    column: str
    descending: bool = False


def parse_query(query: QueryLike, field: str = "query") -> Any:
    """A :class:`~weightslab.query.Query` (``None``/blank = every row) or :class:`InvalidRequest`."""
    from weightslab.query import Query, QueryError, as_query

    if query is None:
        return Query()
    if isinstance(query, str):
        text(query, field, max_len=MAX_QUERY_TEXT)
        if not query.strip():
            return Query()
    try:
        return _parsed_text(query) if isinstance(query, str) else as_query(query)
    except QueryError as exc:
        raise InvalidRequest(field, str(exc)) from None
    except RecursionError:
        raise InvalidRequest(field, "nested too deeply") from None


@functools.lru_cache(maxsize=256)
def _parsed_text(query: str) -> Any:
    """Parsed query text, cached: pages of one view repeat the same text, and a parsed
    :class:`~weightslab.query.Query` is immutable (frozen models holding tuples). Errors are not cached."""
    from weightslab.query import as_query

    return as_query(query)


def with_changes(query: Any, **changes: Any) -> Any:
    from weightslab.query import Query

    data = {"filter": query.filter, "sort": query.sort, "page": query.page, "top_k": query.top_k,
            "group": query.group}
    data.update(changes)
    return Query(**data)


def sort_keys(keys: tuple[SortKey, ...], field: str = "sort") -> tuple[Any, ...]:
    from weightslab.query import SortKey as QuerySortKey
    from weightslab.query.spec import MAX_SORT_KEYS

    if len(keys) > MAX_SORT_KEYS:
        raise InvalidRequest(field, f"{len(keys)} keys (at most {MAX_SORT_KEYS})")
    out = []
    for i, key in enumerate(keys):
        text(key.column, f"{field}[{i}].column", required=True)
        out.append(QuerySortKey(column=key.column, descending=key.descending))
    return tuple(out)


@dataclass(frozen=True)
class QuerySamplesRequest:
    query: QueryLike = None
    sort: tuple[SortKey, ...] = ()  # overrides the query's own sort when given
    offset: int | None = None  # None: the query's page (default 0, 100)
    limit: int | None = None
    columns: tuple[str, ...] = ()  # empty = every data column
    allow_groups: bool = True


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # numeric | string | bool


@dataclass(frozen=True)
class SamplesPage:
    """One page of rows; ``values[j]`` holds column ``columns[j]`` for every row of the page."""

    total: int  # rows matching (after filter and top-k, before paging)
    offset: int
    limit: int
    columns: tuple[Column, ...]
    sample_ids: tuple[str, ...]
    splits: tuple[str, ...]
    discarded: tuple[bool, ...]
    values: tuple[tuple[Any, ...], ...]
    tags: tuple[tuple[str, ...], ...]  # boolean tags set on each row
    categories: tuple[dict[str, str], ...]  # categorical tag -> value, per row
    groups: tuple[dict[str, Any], ...] | None = None  # grouped query: the page of groups
    total_groups: int | None = None
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False, compare=False)
    notes: tuple[str, ...] = ()  # e.g. a tag the query names that no sample has

    def records(self) -> list[dict[str, Any]]:
        """One dict per row: id, split, discarded, every column, ``tags`` (``name`` / ``name=value``)."""
        out = []
        for i, sid in enumerate(self.sample_ids):
            row: dict[str, Any] = {"sample_id": sid, "split": self.splits[i], "discarded": self.discarded[i]}
            for col, values in zip(self.columns, self.values, strict=True):
                row[col.name] = values[i]
            row["tags"] = sorted(list(self.tags[i]) + [f"{k}={v}" for k, v in self.categories[i].items()])
            out.append(row)
        return out


def _columns(frame: Any, requested: tuple[str, ...]) -> list[str]:
    if not requested:
        data = sorted(frame.columns)
        first = [c for c in ("label", "prediction") if c in frame.columns]
        return first + [c for c in data if c not in first]
    known = set(frame.column_names())
    seen: set[str] = set()
    for i, name in enumerate(requested):
        if name in seen:  # repeats would multiply the response (cells = rows x columns)
            raise InvalidRequest(f"columns[{i}]", f"{name!r} is listed twice")
        seen.add(name)
        if name not in known:
            from weightslab.query import UnknownColumnError

            raise InvalidRequest("", str(UnknownColumnError(name, frame.column_names(), field=f"columns[{i}]")))
    return list(requested)


def _cells(column: np.ndarray, kind: str) -> tuple[Any, ...]:
    if kind == "bool":
        return tuple(column.astype(bool, copy=False).tolist())
    values = column.tolist()
    if kind == "numeric":
        for i in np.flatnonzero(np.isnan(column.astype(np.float64, copy=False))).tolist():
            values[i] = None  # NaN = missing
    return tuple(values)


def _texts(column: np.ndarray) -> tuple[str, ...]:
    values = column.tolist()
    if column.dtype.kind == "U" or all(type(v) is str for v in values):  # the table stores str
        return tuple(values)
    return tuple(str(v) for v in values)


def query_samples(experiment: Any, request: QuerySamplesRequest) -> SamplesPage:
    from weightslab.query import Page, run_query
    from weightslab.query.frame import string_nulls
    from weightslab.query.spec import MAX_LIMIT

    query = parse_query(request.query)
    requested = names(request.columns, "columns", max_items=MAX_COLUMNS)
    changes: dict[str, Any] = {}
    if request.sort:
        changes["sort"] = sort_keys(request.sort)
    if request.offset is not None or request.limit is not None:
        offset = query.page.offset if request.offset is None else request.offset
        limit = query.page.limit if request.limit is None else request.limit
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequest.of("page.limit", limit, f"expected 1..{MAX_LIMIT}")
        if not 0 <= offset <= MAX_PAGE_OFFSET:
            raise InvalidRequest.of("page.offset", offset, f"expected 0..{MAX_PAGE_OFFSET}")
        changes["page"] = Page(offset=offset, limit=limit)
    if changes:
        query = with_changes(query, **changes)
    if query.group is None and query.page.limit == 0:  # the same answer whether text or page says it
        raise InvalidRequest.of("page.limit", 0, f"expected 1..{MAX_LIMIT} (every reply carries the total: "
                                                 "limit 1 counts the matches)")
    frame = snapshot(experiment)
    notes = check_query_names(frame, query)
    offset, limit = int(query.page.offset), int(query.page.limit)
    if query.group is not None:
        if not request.allow_groups:
            raise InvalidRequest("query", "grouped queries (group by / aggregate) are not supported here")
        result = run_query(frame, query)
        return SamplesPage(total=result.total, offset=offset, limit=limit, columns=(), sample_ids=(), splits=(),
                           discarded=(), values=(), tags=(), categories=(),
                           groups=tuple(g.to_dict() for g in result.groups or ()), total_groups=result.total_groups,
                           notes=notes)
    columns = _columns(frame, requested)
    total, order = frame_cache(experiment).ordered(frame, query, offset + limit)
    idx = np.ascontiguousarray(order[offset : offset + limit], dtype=np.int64)
    kinds = [frame.kind(name) for name in columns]
    tags: list[list[str]] = [[] for _ in range(len(idx))]
    cats: list[dict[str, str]] = [{} for _ in range(len(idx))]
    for tag, col in sorted(frame.tags.items()):
        for j in np.flatnonzero(col[idx]).tolist():
            tags[j].append(tag)
    for cat, col in sorted(frame.categories.items()):
        sub = col[idx]
        for j in np.flatnonzero(~string_nulls(sub)).tolist():
            cats[j][cat] = str(sub[j])
    return SamplesPage(
        total=int(total), offset=offset, limit=limit,
        columns=tuple(Column(n, k) for n, k in zip(columns, kinds, strict=True)),
        sample_ids=_texts(frame.ids_at(idx)), splits=_texts(frame.splits_at(idx)),
        discarded=tuple(frame.discarded[idx].tolist()),
        values=tuple(_cells(frame.values_at(n, idx), k) for n, k in zip(columns, kinds, strict=True)),
        tags=tuple(tuple(t) for t in tags), categories=tuple(cats), rows=idx, notes=notes)


def query_key(query: Any) -> str:
    """A stable text of a query (audit records, caches)."""
    return json.dumps(query.model_dump(mode="json", exclude_defaults=True), sort_keys=True)


@dataclass(frozen=True)
class SplitInfo:
    name: str
    samples: int
    active: int
    discarded: int


def list_splits(experiment: Any) -> tuple[SplitInfo, ...]:
    """Rows per split, kept with the frame until the table changes (every CLI query reply
    counts the table's rows)."""
    cache = frame_cache(experiment)
    return cache.derived(cache.frame(experiment), "splits", _count_splits)


def _count_splits(frame: Any) -> tuple[SplitInfo, ...]:
    split_names, codes = frame.split_codes()
    if not len(split_names):
        return ()
    totals = split_counts(codes, len(split_names))
    gone = split_counts(codes[np.flatnonzero(frame.discarded)], len(split_names))
    return tuple(SplitInfo(name=str(name), samples=int(totals[i]), active=int(totals[i] - gone[i]),
                           discarded=int(gone[i])) for i, name in enumerate(split_names))


def split_counts(codes: np.ndarray, nsplits: int) -> np.ndarray:
    """Rows per split code (``-1``, a missing split, not counted). A few splits are counted one
    comparison at a time: ``bincount`` would first copy a million codes into a new int64 array."""
    if nsplits <= 8:
        return np.asarray([np.count_nonzero(codes == i) for i in range(nsplits)], dtype=np.int64)
    return np.bincount(codes[codes >= 0], minlength=nsplits)[:nsplits]
