"""Specs from what callers pass: models, JSON-like mappings, JSON text or query text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from .errors import QueryError
from .spec import FILTER_TYPES, Filter, Query


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
