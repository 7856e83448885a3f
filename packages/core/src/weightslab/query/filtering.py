"""Filters: the boolean row mask of a filter spec.

Semantics
---------
* Missing values (NaN in numeric columns, ``None`` in string columns) never satisfy a
  comparison, ``between``, ``in`` or ``contains`` -- not even ``!=``. ``is_null`` matches them.
* ``not`` is the plain complement of the row set (two-valued logic): ``not (loss > 1)``
  includes rows whose loss is NaN.
* Ordering operators (``< <= > >=``, ``between``) need a numeric column; ``contains`` needs a
  string column; ``== != in`` work on every column. Numbers compared with a string column
  match their decimal spelling (``sample_id == 7`` finds ``"7"``).
* ``has_tag`` on a tag that no row carries yet matches nothing (tags are created on first use).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .coerce import as_filter
from .errors import QueryError, QueryTypeError
from .frame import TAG_PREFIX, ColumnKind, Frame, string_nulls
from .spec import (
    All,
    AnyOf,
    Between,
    CategoryEquals,
    Compare,
    Contains,
    Filter,
    HasTag,
    In,
    IsNull,
    Not,
    NotHasTag,
    NotNull,
    check_filter_size,
)


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


def _bound(arr: np.ndarray, value: Any) -> Any:
    """A comparison bound for ``arr``: a float32 column (the table keeps exact float32 values so)
    is compared in float64, as a float64 column would be, not at the bound rounded to float32."""
    return np.float64(value) if arr.dtype == np.float32 else value


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
            v = _bound(arr, _number(f.value, column, kind, what))
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
            return np.asarray((arr >= _bound(arr, f.low)) & (arr <= _bound(arr, f.high)))
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
