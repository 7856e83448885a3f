"""Grouping: group ids by key columns, per-group aggregates, sorting of group rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from pydantic import ValidationError

from .coerce import describe_validation_error
from .errors import QueryError, QueryTypeError
from .filtering import select
from .frame import Frame, factorize, string_nulls
from .spec import Filter, Group, SortKey

MAX_GROUPS = 100_000


@dataclass(frozen=True)
class GroupRow:
    """One group: ``key`` (group column -> value, ``None`` for missing), ``count`` (rows),
    ``values`` (aggregate name -> value, ``None`` where the group has no non-missing value)."""

    key: dict[str, Any]
    count: int
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"key": dict(self.key), "count": self.count, "values": dict(self.values)}



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
            codes = all_codes[idx].astype(np.int64)  # codes may be int8: the slot past the last name needs room
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
