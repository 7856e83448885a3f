"""The typed query spec: pydantic v2 models that travel as JSON (gRPC, CLI, agent).

Filters are a discriminated union on ``op``::

    {"op": ">", "column": "loss", "value": 2.5}
    {"op": "between", "column": "loss", "low": 1, "high": 2}
    {"op": "in", "column": "label", "values": [1, 2, 7]}
    {"op": "contains", "column": "name", "value": "cat", "ignore_case": false}
    {"op": "is_null", "column": "loss"}           {"op": "not_null", "column": "loss"}
    {"op": "has_tag", "tag": "noisy"}             {"op": "not_has_tag", "tag": "reviewed"}
    {"op": "category", "tag": "quality", "value": "blurry"}
    {"op": "all", "filters": [...]}  {"op": "any", "filters": [...]}  {"op": "not", "filter": {...}}

A :class:`Query` is ``filter`` + ``sort`` + ``page`` (+ optional ``top_k`` and ``group``).
Every model forbids unknown fields, so a typo is a validation error naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, StringConstraints, model_validator

from ._syntax import format_name, format_number

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100
MAX_FILTER_DEPTH = 64
MAX_FILTER_NODES = 10_000
MAX_IN_VALUES = 100_000
MAX_SORT_KEYS = 16
MAX_GROUP_KEYS = 8
MAX_AGGREGATES = 32
MAX_TOP_K = 100_000_000

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
TagName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(max_length=10_000)]
Number = int | FiniteFloat
# Order matters for pydantic's smart union only when nothing matches exactly; JSON true/1/1.5/"x"
# map to bool/int/float/str respectively.
Scalar = bool | int | FiniteFloat | Text

CompareOp = Literal["==", "!=", "<", "<=", ">", ">="]
AggregateFn = Literal["count", "mean", "min", "max", "sum", "quantile"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- filters -------------------------------------------------------------------


class Compare(_Spec):
    """``column <op> value``. Missing values (NaN/None) never match, not even ``!=``."""

    op: CompareOp
    column: ColumnName
    value: Scalar


class Between(_Spec):
    """``low <= column <= high`` (inclusive), numeric columns."""

    op: Literal["between"] = "between"
    column: ColumnName
    low: Number
    high: Number

    @model_validator(mode="after")
    def _ordered(self) -> Between:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self


class In(_Spec):
    """``column`` equals one of ``values``."""

    op: Literal["in"] = "in"
    column: ColumnName
    values: tuple[Scalar, ...] = Field(max_length=MAX_IN_VALUES)


class Contains(_Spec):
    """Substring match on a string column."""

    op: Literal["contains"] = "contains"
    column: ColumnName
    value: Text
    ignore_case: bool = False


class IsNull(_Spec):
    """NaN (numeric) or None (string)."""

    op: Literal["is_null"] = "is_null"
    column: ColumnName


class NotNull(_Spec):
    op: Literal["not_null"] = "not_null"
    column: ColumnName


class HasTag(_Spec):
    """Rows carrying the boolean tag (a tag no row has yet matches nothing)."""

    op: Literal["has_tag"] = "has_tag"
    tag: TagName


class NotHasTag(_Spec):
    op: Literal["not_has_tag"] = "not_has_tag"
    tag: TagName


class CategoryEquals(_Spec):
    """Categorical tag ``tag:<tag>=<value>``."""

    op: Literal["category"] = "category"
    tag: TagName
    value: Text


class All(_Spec):
    """AND of ``filters`` (empty: every row)."""

    op: Literal["all"] = "all"
    filters: tuple[Filter, ...] = ()


class AnyOf(_Spec):
    """OR of ``filters`` (empty: no row). JSON ``op`` is ``"any"``."""

    op: Literal["any"] = "any"
    filters: tuple[Filter, ...] = ()


class Not(_Spec):
    """Complement of ``filter`` (two-valued: ``not (loss > 1)`` includes NaN rows)."""

    op: Literal["not"] = "not"
    filter: Filter


Filter = Annotated[
    Compare | Between | In | Contains | IsNull | NotNull | HasTag | NotHasTag | CategoryEquals | All | AnyOf | Not,
    Field(discriminator="op"),
]

All.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()


def filter_shape(f: Any) -> tuple[int, int]:
    """``(depth, node count)`` of a filter tree, iteratively (no recursion limit)."""
    depth = nodes = 0
    stack: list[tuple[Any, int]] = [(f, 1)]
    while stack:
        node, d = stack.pop()
        nodes += 1
        depth = max(depth, d)
        if isinstance(node, (All, AnyOf)):
            stack.extend((c, d + 1) for c in node.filters)
        elif isinstance(node, Not):
            stack.append((node.filter, d + 1))
    return depth, nodes


def check_filter_size(f: Any) -> None:
    if f is None:
        return
    depth, nodes = filter_shape(f)
    if depth > MAX_FILTER_DEPTH:
        raise ValueError(f"filter: nested {depth} levels deep (at most {MAX_FILTER_DEPTH})")
    if nodes > MAX_FILTER_NODES:
        raise ValueError(f"filter: {nodes} conditions (at most {MAX_FILTER_NODES})")


# -- sort / page / top-k / group ----------------------------------------------


class SortKey(_Spec):
    """One sort column; NaN/None always sort last. ``sample_id`` sorts numeric-aware."""

    column: ColumnName
    descending: bool = False


class Page(_Spec):
    offset: int = Field(default=0, ge=0, le=10**12)
    limit: int = Field(default=DEFAULT_LIMIT, ge=0, le=MAX_LIMIT)


class TopK(_Spec):
    """Keep only the ``k`` rows with the largest (or smallest) non-missing ``column``."""

    column: ColumnName
    k: int = Field(ge=1, le=MAX_TOP_K)
    largest: bool = True


class Aggregate(_Spec):
    """``count`` (rows, or non-missing values of ``column``), ``mean``/``min``/``max``/``sum``,
    ``quantile`` (``q`` in [0, 1], linear interpolation). NaN/None values are ignored."""

    fn: AggregateFn
    column: ColumnName | None = None
    q: FiniteFloat | None = None

    @model_validator(mode="after")
    def _check(self) -> Aggregate:
        if self.fn != "count" and self.column is None:
            raise ValueError(f"column: required for {self.fn}")
        if self.fn == "quantile":
            if self.q is None:
                raise ValueError("q: required for quantile (0 <= q <= 1)")
            if not 0.0 <= self.q <= 1.0:
                raise ValueError(f"q: must be between 0 and 1, got {self.q}")
        elif self.q is not None:
            raise ValueError(f"q: only valid for quantile, not {self.fn}")
        return self

    @property
    def name(self) -> str:
        """Display/result name: ``count``, ``mean(loss)``, ``quantile(loss, 0.9)``."""
        if self.column is None:
            return self.fn
        col = format_name(self.column)
        if self.fn == "quantile":
            assert self.q is not None
            return f"quantile({col}, {format_number(self.q)})"
        return f"{self.fn}({col})"


class Group(_Spec):
    """Group rows by columns (``label``, ``split``, ``tag:noisy``, ``tag:quality``...); empty
    ``by`` aggregates all matching rows into one group."""

    by: tuple[ColumnName, ...] = Field(default=(), max_length=MAX_GROUP_KEYS)
    aggregates: tuple[Aggregate, ...] = Field(
        default=(Aggregate(fn="count"),), min_length=1, max_length=MAX_AGGREGATES
    )

    @model_validator(mode="after")
    def _unique(self) -> Group:
        names = [a.name for a in self.aggregates]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"aggregates: duplicated {', '.join(dup)}")
        if len(set(self.by)) != len(self.by):
            raise ValueError("by: a column is listed twice")
        return self


class Query(_Spec):
    """filter + sort + page (+ top_k, + group). See :func:`weightslab.query.run_query`."""

    filter: Filter | None = None
    sort: tuple[SortKey, ...] = Field(default=(), max_length=MAX_SORT_KEYS)
    page: Page = Page()
    top_k: TopK | None = None
    group: Group | None = None

    @model_validator(mode="after")
    def _size(self) -> Query:
        check_filter_size(self.filter)
        return self


FILTER_TYPES = (Compare, Between, In, Contains, IsNull, NotNull, HasTag, NotHasTag, CategoryEquals, All, AnyOf, Not)
