"""Evaluate query specs against a :class:`~weightslab.query.frame.Frame` with numpy.

Semantics
---------
* Missing values (NaN in numeric columns, ``None`` in string columns) never satisfy a
  comparison, ``between``, ``in`` or ``contains`` -- not even ``!=``. ``is_null`` matches them.
* ``not`` is the plain complement of the row set (two-valued logic): ``not (loss > 1)``
  includes rows whose loss is NaN.
* Ordering operators (``< <= > >=``, ``between``) need a numeric column; ``contains`` needs a
  string column; ``== != in`` work on every column. Numbers compared with a string column
  match their decimal spelling (``sample_id == 7`` finds ``"7"``).
* Sorting is stable (ties keep table order) and puts NaN/None last in both directions;
  ``sample_id`` sorts numeric-aware (``"2" < "10"``), other strings lexicographically.
* ``has_tag`` on a tag that no row carries yet matches nothing (tags are created on first use).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from pydantic import ValidationError

from .errors import QueryError, QueryTypeError
from .frame import TAG_PREFIX, ColumnKind, Frame, factorize, string_nulls
from .spec import (
    FILTER_TYPES,
    All,
    AnyOf,
    Between,
    CategoryEquals,
    Compare,
    Contains,
    Filter,
    Group,
    HasTag,
    In,
    IsNull,
    Not,
    NotHasTag,
    NotNull,
    Query,
    SortKey,
    TopK,
    check_filter_size,
)

MAX_GROUPS = 100_000
MAX_BINS = 100_000
_PARTIAL_MIN_ROWS = 4096

Indices = np.ndarray


# -- results -------------------------------------------------------------------


@dataclass(frozen=True)
class GroupRow:
    """One group: ``key`` (group column -> value, ``None`` for missing), ``count`` (rows),
    ``values`` (aggregate name -> value, ``None`` where the group has no non-missing value)."""

    key: dict[str, Any]
    count: int
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"key": dict(self.key), "count": self.count, "values": dict(self.values)}


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


@dataclass
class Histogram:
    """Counts per bin, broken down by split and by discarded.

    ``edges`` has ``bins + 1`` entries (values for :func:`histogram_by_value`, positions in the
    sorted order for :func:`histogram_by_position`). ``counts`` = all rows per bin;
    ``by_split[s]`` = rows of split ``s``; ``discarded`` = discarded rows;
    ``by_split_discarded[s]`` = discarded rows of split ``s`` (kept = by_split - that).
    ``missing``: rows with a NaN value; ``out_of_range``: rows outside an explicit range.
    """

    edges: np.ndarray
    counts: np.ndarray
    by_split: dict[str, np.ndarray]
    discarded: np.ndarray
    by_split_discarded: dict[str, np.ndarray]
    missing: int = 0
    out_of_range: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "by_split": {k: v.tolist() for k, v in self.by_split.items()},
            "discarded": self.discarded.tolist(),
            "by_split_discarded": {k: v.tolist() for k, v in self.by_split_discarded.items()},
            "missing": self.missing,
            "out_of_range": self.out_of_range,
        }


# -- coercion --------------------------------------------------------------------


def describe_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line per problem, each naming the field path (``filter.value: ...``)."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()))
        if prefix:
            loc = f"{prefix}.{loc}" if loc else prefix
        lines.append(f"{loc or '(query)'}: {e.get('msg', 'invalid')}")
    return "; ".join(lines)


def as_query(query: Query | Mapping[str, Any] | str) -> Query:
    """A :class:`Query` from a model, a JSON-like mapping, JSON text (``{...}``) or query text.

    Raises :class:`QueryError` (``QuerySyntaxError`` for text) whose message names the field.
    """
    if isinstance(query, Query):
        return query
    if isinstance(query, str):
        if query.lstrip().startswith("{"):  # a JSON spec rather than query text
            try:
                return Query.model_validate_json(query)
            except ValidationError as e:
                raise QueryError(f"invalid query: {describe_validation_error(e)}") from None
        from .text import parse_query

        return parse_query(query)
    if isinstance(query, Mapping):
        try:
            return Query.model_validate(query)
        except ValidationError as e:
            raise QueryError(f"invalid query: {describe_validation_error(e)}") from None
    raise QueryError(f"expected a Query, a mapping or query text, got {type(query).__name__}")


def as_filter(f: Filter | Mapping[str, Any] | str | None) -> Filter | None:
    """A filter spec from a model, a JSON-like mapping or filter text (``None`` = all rows)."""
    if f is None or isinstance(f, FILTER_TYPES):
        return f
    if isinstance(f, str):
        from .text import parse_filter

        return parse_filter(f)
    if isinstance(f, Mapping):
        try:
            return Query.model_validate({"filter": f}).filter
        except ValidationError as e:
            raise QueryError(f"invalid filter: {describe_validation_error(e)}") from None
    raise QueryError(f"expected a filter spec, a mapping or filter text, got {type(f).__name__}")


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    return f"string {value!r}"


def _kind_name(kind: ColumnKind) -> str:
    return {"numeric": "a numeric", "string": "a string", "bool": "a boolean"}[kind]


def _number(value: Any, column: str, kind: ColumnKind, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise QueryTypeError(f"{what}: column {column!r} is {_kind_name(kind)} column; "
                             f"cannot compare it with {_describe(value)}")
    return float(value) if isinstance(value, float) else value


def _text(value: Any, column: str, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise QueryTypeError(f"{what}: column {column!r} is a string column; "
                             f"cannot compare it with {_describe(value)}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise QueryTypeError(f"{what}: unsupported value {value!r}")


def _flag(value: Any, column: str, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise QueryTypeError(f"{what}: column {column!r} is a boolean column; "
                         f"compare it with true or false, not {_describe(value)}")


# -- filters ---------------------------------------------------------------------


def _numeric_nulls(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    return np.zeros(len(arr), dtype=bool)


def _nulls(arr: np.ndarray, kind: ColumnKind) -> np.ndarray:
    if kind == "numeric":
        return _numeric_nulls(arr)
    if kind == "string":
        return string_nulls(arr)
    return np.zeros(len(arr), dtype=bool)


def _string_equals(frame: Frame, column: str, arr: np.ndarray, values: Sequence[str]) -> np.ndarray:
    n = len(arr)
    cached = frame.cached_split_codes() if column == "split" else None
    if cached is not None:
        names, codes = cached
        wanted = [i for i, name in enumerate(names) if name in set(values)]
        if not wanted:
            return np.zeros(n, dtype=bool)
        if len(wanted) == 1:
            return codes == wanted[0]
        return np.isin(codes, wanted)
    if len(values) == 0:
        return np.zeros(n, dtype=bool)
    if len(values) <= 4:
        out = arr == values[0]
        for v in values[1:]:
            out |= arr == v
        return np.asarray(out, dtype=bool)
    wanted_set = set(values)
    return np.fromiter((isinstance(v, str) and v in wanted_set for v in arr), dtype=bool, count=n)


def _eval(frame: Frame, f: Any) -> np.ndarray:
    n = len(frame)
    if isinstance(f, All):
        out = np.ones(n, dtype=bool)
        for child in f.filters:
            out &= _eval(frame, child)
        return out
    if isinstance(f, AnyOf):
        out = np.zeros(n, dtype=bool)
        for child in f.filters:
            out |= _eval(frame, child)
        return out
    if isinstance(f, Not):
        return ~_eval(frame, f.filter)
    if isinstance(f, HasTag | NotHasTag):
        col = frame.tags.get(f.tag)
        if col is None:
            if f.tag in frame.categories:
                raise QueryTypeError(f"tag {f.tag!r} is a categorical tag; "
                                     f"use tag:{f.tag} == \"<value>\" or tag:{f.tag} is not null")
            has = np.zeros(n, dtype=bool)
        else:
            has = np.asarray(col, dtype=bool)
        return has.copy() if isinstance(f, HasTag) else ~has
    if isinstance(f, CategoryEquals):
        col = frame.categories.get(f.tag)
        if col is None:
            if f.tag in frame.tags:
                raise QueryTypeError(f"tag {f.tag!r} is a boolean tag; use has:{f.tag}")
            return np.zeros(n, dtype=bool)
        return _string_equals(frame, TAG_PREFIX + f.tag, col, [f.value])

    column = f.column
    arr = frame.column(column, field=f"filter ({f.op}).column")
    kind = frame.kind(column)
    what = f"filter {column!r} {f.op}"
    if isinstance(f, IsNull):
        return _nulls(arr, kind)
    if isinstance(f, NotNull):
        return ~_nulls(arr, kind)
    if isinstance(f, Compare):
        op = f.op
        if kind == "numeric":
            v = _number(f.value, column, kind, what)
            with np.errstate(invalid="ignore"):
                if op == "==":
                    return np.asarray(arr == v)
                if op == "!=":
                    return np.asarray(arr != v) & ~_numeric_nulls(arr)
                if op == "<":
                    return np.asarray(arr < v)
                if op == "<=":
                    return np.asarray(arr <= v)
                if op == ">":
                    return np.asarray(arr > v)
                return np.asarray(arr >= v)
        if op not in ("==", "!="):
            raise QueryTypeError(f"{what}: operator {op!r} needs a numeric column, but {column!r} is "
                                 f"{_kind_name(kind)} column (use ==, !=, in"
                                 f"{', contains' if kind == 'string' else ''}, is null)")
        if kind == "bool":
            b = _flag(f.value, column, what)
            eq = np.asarray(arr, dtype=bool) == b
            return eq if op == "==" else ~eq
        s = _text(f.value, column, what)
        eq = _string_equals(frame, column, arr, [s])
        return eq if op == "==" else ~eq & ~string_nulls(arr)
    if isinstance(f, Between):
        if kind != "numeric":
            raise QueryTypeError(f"{what}: between needs a numeric column, but {column!r} is "
                                 f"{_kind_name(kind)} column")
        with np.errstate(invalid="ignore"):
            return np.asarray((arr >= f.low) & (arr <= f.high))
    if isinstance(f, In):
        if kind == "numeric":
            nums = [_number(v, column, kind, what) for v in f.values]
            if not nums:
                return np.zeros(n, dtype=bool)
            return np.isin(arr, np.asarray(nums, dtype=np.float64 if arr.dtype.kind == "f" else None))
        if kind == "bool":
            flags = {_flag(v, column, what) for v in f.values}
            bools = np.asarray(arr, dtype=bool)
            if flags == {True, False}:
                return np.ones(n, dtype=bool)
            if not flags:
                return np.zeros(n, dtype=bool)
            return bools.copy() if True in flags else ~bools
        return _string_equals(frame, column, arr, [_text(v, column, what) for v in f.values])
    if isinstance(f, Contains):
        if kind != "string":
            raise QueryTypeError(f"{what}: contains needs a string column, but {column!r} is "
                                 f"{_kind_name(kind)} column")
        sub = f.value
        if f.ignore_case:
            sub = sub.lower()
            return np.fromiter((isinstance(v, str) and sub in v.lower() for v in arr), dtype=bool, count=n)
        return np.fromiter((isinstance(v, str) and sub in v for v in arr), dtype=bool, count=n)
    raise QueryError(f"unsupported filter {type(f).__name__}")


def filter_mask(frame: Frame, filter: Filter | Mapping[str, Any] | str | None) -> np.ndarray:
    """Boolean row mask of ``filter`` (every row when ``None``)."""
    f = as_filter(filter)
    if f is None:
        return np.ones(len(frame), dtype=bool)
    try:
        check_filter_size(f)
    except ValueError as e:
        raise QueryError(str(e)) from None
    return _eval(frame, f)


def select(frame: Frame, filter: Filter | Mapping[str, Any] | str | None = None) -> np.ndarray:
    """Row indices (ascending ``int64``) matching ``filter`` (every row when ``None``)."""
    if filter is None:
        return np.arange(len(frame), dtype=np.int64)
    return np.flatnonzero(filter_mask(frame, filter)).astype(np.int64, copy=False)


# -- sorting ---------------------------------------------------------------------


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
        # ``arr[idx]`` is a fresh copy, so negating in place is safe (and saves a pass).
        sub = sub.astype(np.float64 if sub.dtype.kind == "f" else np.int64, copy=False)
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


# -- grouping --------------------------------------------------------------------


def _compact(codes: np.ndarray, card: int) -> tuple[np.ndarray, np.ndarray]:
    """``(present codes ascending, group id per row)``."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if card <= 4 * len(codes) + 1024:
        present = np.bincount(codes, minlength=card) > 0
        remap = np.cumsum(present) - 1
        return np.flatnonzero(present).astype(np.int64), remap[codes].astype(np.int64)
    uniq, inv = np.unique(codes, return_inverse=True)
    return uniq.astype(np.int64), inv.astype(np.int64).reshape(-1)


def _group_ids(frame: Frame, idx: np.ndarray, by: Sequence[str]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Group id per selected row (groups numbered in key order, missing last) and the keys."""
    m = len(idx)
    if not by:  # one group of every selected row (even when there are none: count 0)
        return np.zeros(m, dtype=np.int64), [{}]
    parts: list[tuple[str, list[Any], np.ndarray]] = []
    for i, name in enumerate(by):
        arr = frame.column(name, field=f"group.by[{i}]")
        if name == "split":
            uniques, all_codes = frame.split_codes()
            codes = all_codes[idx]
        else:
            uniques, codes = factorize(arr[idx])
        codes = np.where(codes < 0, len(uniques), codes)  # missing -> extra slot, sorts last
        parts.append((name, uniques, codes))
    cards = [len(u) + 1 for _, u, _ in parts]
    if float(np.prod(np.asarray(cards, dtype=np.float64))) < 2.0**62:
        combined = np.zeros(m, dtype=np.int64)
        for (_, _, codes), card in zip(parts, cards, strict=True):
            combined = combined * card + codes
        present, gid = _compact(combined, int(np.prod(cards)))
        digits = []
        rest = present.copy()
        for card in reversed(cards):
            digits.append(rest % card)
            rest //= card
        digits.reverse()
    else:  # pragma: no cover - needs > 2**62 key combinations
        stacked = np.stack([c for _, _, c in parts], axis=1)
        uniq_rows, gid = np.unique(stacked, axis=0, return_inverse=True)
        gid = gid.reshape(-1).astype(np.int64)
        digits = [uniq_rows[:, j] for j in range(len(parts))]
    if len(digits[0]) > MAX_GROUPS:
        raise QueryError(f"group.by: grouping by {', '.join(by)} makes {len(digits[0])} groups "
                         f"(at most {MAX_GROUPS}); filter first or group by a coarser column")
    keys: list[dict[str, Any]] = []
    for g in range(len(digits[0])):
        key: dict[str, Any] = {}
        for (name, uniques, _), d in zip(parts, digits, strict=True):
            j = int(d[g])
            key[name] = uniques[j] if j < len(uniques) else None
        keys.append(key)
    return gid, keys


def _group_quantiles(v: np.ndarray, valid: np.ndarray, gid: np.ndarray, by_gid: np.ndarray, nn: np.ndarray,
                     q: float) -> np.ndarray:
    """Per-group quantile (linear interpolation) of the non-NaN values ``v[valid]``;
    ``by_gid`` is a stable order of the rows by group."""
    ngroups = len(nn)
    out = np.full(ngroups, np.nan)
    if not valid.any():
        return out
    if ngroups <= 256:
        # Few groups: one selection (partition) per group instead of sorting everything.
        order = by_gid[valid[by_gid]]
        xs = v[order]
        ends = np.cumsum(nn)
        for i in range(ngroups):
            if nn[i]:
                out[i] = np.quantile(xs[ends[i] - nn[i] : ends[i]], q)
        return out
    x, g = v[valid], gid[valid]
    by_value = np.argsort(x)
    order = by_value[np.argsort(g[by_value], kind="stable")]  # by group, then value
    sv = x[order]
    starts = np.cumsum(nn) - nn
    pos = q * np.maximum(nn - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.ceil(pos).astype(np.int64)
    a = sv[np.minimum(starts + lo, len(sv) - 1)]
    b = sv[np.minimum(starts + hi, len(sv) - 1)]
    has = nn > 0
    out[has] = (a + (b - a) * (pos - lo))[has]
    return out


def _aggregate_rows(frame: Frame, idx: np.ndarray, group: Group) -> list[GroupRow]:
    gid, keys = _group_ids(frame, idx, group.by)
    ngroups = len(keys)
    counts = np.bincount(gid, minlength=ngroups) if ngroups else np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if ngroups else counts
    by_gid: np.ndarray | None = None
    small_gid = gid.astype(np.min_scalar_type(max(ngroups - 1, 0)))  # radix sort for small types
    results: dict[str, list[Any]] = {}
    for i, agg in enumerate(group.aggregates):
        where = f"group.aggregates[{i}].column"
        if agg.column is None:
            results[agg.name] = [int(c) for c in counts]
            continue
        arr = frame.column(agg.column, field=where)
        kind = frame.kind(agg.column)
        sub = arr[idx]
        if kind == "string":
            if agg.fn != "count":
                raise QueryTypeError(f"{where}: {agg.fn} needs a numeric or boolean column, but "
                                     f"{agg.column!r} is a string column (count works)")
            valid = ~string_nulls(sub)
            results[agg.name] = [int(c) for c in np.bincount(gid[valid], minlength=ngroups)]
            continue
        v = sub.astype(np.float64)
        valid = ~np.isnan(v)
        nn = np.bincount(gid[valid], minlength=ngroups)
        if agg.fn == "count":
            results[agg.name] = [int(c) for c in nn]
            continue
        if agg.fn in ("mean", "sum"):
            s = np.bincount(gid[valid], weights=v[valid], minlength=ngroups)
            vals = s / np.maximum(nn, 1) if agg.fn == "mean" else s
        elif agg.fn in ("min", "max"):
            if by_gid is None:
                by_gid = np.argsort(small_gid, kind="stable")
            ufunc = np.fmin if agg.fn == "min" else np.fmax
            vals = ufunc.reduceat(v[by_gid], starts) if len(v) else np.full(ngroups, np.nan)
        else:  # quantile
            q = float(agg.q if agg.q is not None else 0.5)
            if by_gid is None:
                by_gid = np.argsort(small_gid, kind="stable")
            vals = _group_quantiles(v, valid, small_gid, by_gid, nn, q)
        results[agg.name] = [float(x) if c > 0 else None for x, c in zip(vals.tolist(), nn, strict=True)]
    return [
        GroupRow(key=keys[g], count=int(counts[g]), values={name: col[g] for name, col in results.items()})
        for g in range(ngroups)
    ]


def aggregate(frame: Frame, filter: Filter | Mapping[str, Any] | str | None, group: Group | Mapping[str, Any],
              *, indices: np.ndarray | None = None) -> list[GroupRow]:
    """Group the rows matching ``filter`` (or the given ``indices``) and aggregate them.

    Groups come in key order (missing key last). Aggregates ignore NaN/None values; a group
    with no value for an aggregate gets ``None``.
    """
    if not isinstance(group, Group):
        try:
            group = Group.model_validate(group)
        except ValidationError as e:
            raise QueryError(f"invalid group: {describe_validation_error(e, 'group')}") from None
    idx = select(frame, filter) if indices is None else np.asarray(indices, dtype=np.int64)
    return _aggregate_rows(frame, idx, group)


def _row_key(column: str, row: GroupRow) -> Any:
    return row.key[column]


def _row_value(name: str, row: GroupRow) -> Any:
    return row.values[name]


def _mixed_key(get: Callable[[GroupRow], Any], row: GroupRow) -> tuple[str, str]:
    value = get(row)
    return (type(value).__name__, str(value))


def _row_count(row: GroupRow) -> Any:
    return row.count


def _sort_groups(rows: list[GroupRow], group: Group, sort: Sequence[SortKey]) -> list[GroupRow]:
    agg_names = [a.name for a in group.aggregates]
    valid = list(group.by) + agg_names + ([] if "count" in agg_names else ["count"])
    getters: list[tuple[Callable[[GroupRow], Any], bool]] = []
    for i, key in enumerate(sort):
        col = key.column
        if col in group.by:
            getters.append((partial(_row_key, col), key.descending))
        elif col in agg_names:
            getters.append((partial(_row_value, col), key.descending))
        elif col == "count":
            getters.append((_row_count, key.descending))
        else:
            raise QueryError(f"sort[{i}].column: {col!r} is not a group column or aggregate of this "
                             f"grouped query; choose one of: {', '.join(valid)}")
    out = list(rows)
    for get, descending in reversed(getters):
        present = [r for r in out if get(r) is not None]
        missing = [r for r in out if get(r) is None]
        try:
            present.sort(key=get, reverse=descending)
        except TypeError:
            present.sort(key=partial(_mixed_key, get), reverse=descending)
        out = present + missing
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


def ordered_indices(frame: Frame, query: Query | Mapping[str, Any] | str) -> np.ndarray:
    """Every row of the result set in query order, ignoring the page (for
    :func:`histogram_by_position` and edits by query)."""
    q = as_query(query)
    if q.group is not None:
        raise QueryError("group: ordered_indices needs an ungrouped query")
    idx = _result_rows(frame, q)
    return sort_indices(frame, idx, q.sort) if q.sort else idx


# -- histograms ------------------------------------------------------------------


def _check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or not 1 <= int(bins) <= MAX_BINS:
        raise QueryError(f"bins: expected an integer between 1 and {MAX_BINS}, got {bins!r}")
    return int(bins)


def _breakdown(frame: Frame, rows: np.ndarray, bin_of_row: np.ndarray, bins: int,
               edges: np.ndarray, missing: int = 0, out_of_range: int = 0) -> Histogram:
    """``rows``: row indices or a boolean row mask, aligned with ``bin_of_row``."""
    names, codes = frame.split_codes()
    split_names = [str(s) for s in names]
    nsplit = len(names) + 1  # last slot: missing split
    sc = codes[rows]
    sc = np.where(sc < 0, nsplit - 1, sc)
    d = frame.discarded[rows].astype(np.int64)
    combined = (sc * 2 + d) * bins + bin_of_row
    cube = np.bincount(combined, minlength=nsplit * 2 * bins).reshape(nsplit, 2, bins)
    by_split = {name: cube[i].sum(axis=0) for i, name in enumerate(split_names)}
    by_split_discarded = {name: cube[i, 1].copy() for i, name in enumerate(split_names)}
    if cube[-1].any():
        by_split[""] = cube[-1].sum(axis=0)
        by_split_discarded[""] = cube[-1, 1].copy()
    return Histogram(edges=edges, counts=cube.sum(axis=(0, 1)), by_split=by_split,
                     discarded=cube[:, 1].sum(axis=0), by_split_discarded=by_split_discarded,
                     missing=missing, out_of_range=out_of_range)


def histogram_by_value(frame: Frame, column: str, bins: int,
                       filter: Filter | Mapping[str, Any] | str | None = None,
                       range: tuple[float, float] | None = None) -> Histogram:
    """Equal-width histogram of a numeric (or boolean) column over the rows matching ``filter``.

    The range defaults to the finite min/max of the selected values (a single value v gets
    ``(v - 0.5, v + 0.5)``); bins are half-open except the last, as in ``numpy.histogram``.
    """
    bins = _check_bins(bins)
    arr = frame.column(column, field="column")
    kind = frame.kind(column)
    if kind == "string":
        raise QueryTypeError(f"column: histogram_by_value needs a numeric column, but {column!r} is a "
                             f"string column (group by it and count instead)")
    selected = None if filter is None else filter_mask(frame, filter)
    v = arr.astype(np.float64, copy=False)
    valid = ~np.isnan(v)
    if selected is not None:
        valid &= selected
    nvalid = int(np.count_nonzero(valid))
    nselected = len(frame) if selected is None else int(np.count_nonzero(selected))
    missing = nselected - nvalid
    if range is not None:
        try:
            lo, hi = float(range[0]), float(range[1])
        except (TypeError, ValueError, IndexError):
            raise QueryError(f"range: expected (low, high), got {range!r}") from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise QueryError(f"range: expected finite low < high, got {range!r}")
    else:
        finite = valid & np.isfinite(v)
        if finite.any():
            lo = float(np.min(v, where=finite, initial=np.inf))
            hi = float(np.max(v, where=finite, initial=-np.inf))
        else:
            lo, hi = 0.0, 1.0
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    with np.errstate(invalid="ignore"):
        inside = valid & (v >= lo) & (v <= hi)
    out_of_range = nvalid - int(np.count_nonzero(inside))
    x = v[inside]
    b = ((x - lo) * (bins / (hi - lo))).astype(np.int64)
    np.clip(b, 0, bins - 1, out=b)
    # Fix rounding at the edges so that the bins agree with ``edges`` (as numpy.histogram does).
    b[x < edges[b]] -= 1
    inc = (x >= edges[b + 1]) & (b != bins - 1)
    b[inc] += 1
    np.clip(b, 0, bins - 1, out=b)
    return _breakdown(frame, inside, b, bins, edges, missing=missing, out_of_range=out_of_range)


def histogram_by_position(frame: Frame, order_indices: np.ndarray, bins: int) -> Histogram:
    """Counts by position in a sorted order (e.g. :func:`ordered_indices`), ``bins`` equal
    slices of positions, broken down by split and discarded. ``edges`` are positions."""
    bins = _check_bins(bins)
    rows = np.asarray(order_indices)
    if rows.ndim != 1 or (len(rows) and rows.dtype.kind not in "iu"):
        raise QueryError("order_indices: expected a 1-D array of row indices")
    rows = rows.astype(np.int64, copy=False)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(frame)):
        raise QueryError(f"order_indices: row index out of range for a frame of {len(frame)} rows")
    m = len(rows)
    pos_bin = (np.arange(m, dtype=np.int64) * bins) // max(m, 1)
    edges = np.linspace(0.0, float(m), bins + 1)
    return _breakdown(frame, rows, pos_bin, bins, edges)
