"""The query engine: typed filter/sort/group/aggregate specs evaluated with numpy.

Everything that reads or edits the sample table by condition (UI quick filters, CLI, agent,
gRPC) goes through this package. Specs are pydantic models (JSON over the wire) or text::

    from weightslab.query import Frame, run_query, parse_query
    result = run_query(frame, 'loss > 2.5 and split == "train" sort by loss desc limit 128')
    result.total, result.indices

Nothing here evaluates code: text is tokenized and parsed by hand, specs are validated models.
"""

from __future__ import annotations

from .engine import (
    MAX_BINS,
    MAX_GROUPS,
    GroupRow,
    Histogram,
    QueryResult,
    aggregate,
    as_filter,
    as_query,
    describe_validation_error,
    filter_mask,
    histogram_by_position,
    histogram_by_value,
    ordered_indices,
    run_query,
    select,
    sort_indices,
    top_k,
)
from .errors import QueryError, QuerySyntaxError, QueryTypeError, UnknownColumnError
from .frame import Frame, factorize, sample_id_rank
from .spec import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Aggregate,
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
    Page,
    Query,
    SortKey,
    TopK,
)
from .text import format_filter, format_query, parse_filter, parse_query

And = All
Or = AnyOf

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_BINS",
    "MAX_GROUPS",
    "MAX_LIMIT",
    "Aggregate",
    "All",
    "And",
    "AnyOf",
    "Between",
    "CategoryEquals",
    "Compare",
    "Contains",
    "Filter",
    "Frame",
    "Group",
    "GroupRow",
    "HasTag",
    "Histogram",
    "In",
    "IsNull",
    "Not",
    "NotHasTag",
    "NotNull",
    "Or",
    "Page",
    "Query",
    "QueryError",
    "QueryResult",
    "QuerySyntaxError",
    "QueryTypeError",
    "SortKey",
    "TopK",
    "UnknownColumnError",
    "aggregate",
    "as_filter",
    "as_query",
    "describe_validation_error",
    "factorize",
    "filter_mask",
    "format_filter",
    "format_query",
    "histogram_by_position",
    "histogram_by_value",
    "ordered_indices",
    "parse_filter",
    "parse_query",
    "run_query",
    "sample_id_rank",
    "select",
    "sort_indices",
    "top_k",
]
