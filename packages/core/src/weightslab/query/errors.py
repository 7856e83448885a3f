"""Errors raised by the query engine (all are :class:`ValueError` subclasses).

A gRPC/CLI front end maps every :class:`QueryError` to ``INVALID_ARGUMENT`` and shows
``str(error)`` to the user: the messages name the field, column or token at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import get_close_matches

_MAX_LISTED = 40


class QueryError(ValueError):
    """A query that cannot be evaluated: invalid spec, unknown column, type mismatch."""


class UnknownColumnError(QueryError):
    """A column name that the frame does not have; the message lists the known ones."""

    def __init__(self, column: str, known: Sequence[str], *, field: str | None = None) -> None:
        self.column = column
        self.known = list(known)
        self.field = field
        close = get_close_matches(column, self.known, n=3, cutoff=0.6)
        shown = ", ".join(self.known[:_MAX_LISTED])
        if len(self.known) > _MAX_LISTED:
            shown += f", ... ({len(self.known) - _MAX_LISTED} more)"
        where = f"{field}: " if field else ""
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        super().__init__(f"{where}unknown column {column!r}{hint}; known columns: {shown or '(none)'}")


class QueryTypeError(QueryError):
    """An operation that does not apply to a column's type (e.g. ``<`` on a string column)."""


class QuerySyntaxError(QueryError):
    """Text that does not parse; ``position`` is the 0-based character offset of the bad token."""

    def __init__(self, message: str, text: str, position: int) -> None:
        self.message = message
        self.text = text
        self.position = max(0, min(position, len(text)))
        super().__init__(self._render())

    def _render(self) -> str:
        text, pos = self.text, self.position
        start = text.rfind("\n", 0, pos) + 1
        end = text.find("\n", pos)
        line = text[start : end if end >= 0 else len(text)]
        column = pos - start
        # Keep the caret line readable for very long queries.
        if len(line) > 120:
            lo = max(0, column - 60)
            prefix = "..." if lo else ""
            line = prefix + line[lo : lo + 120]
            column = column - lo + len(prefix)
        line = line.replace("\t", " ")
        return f"{self.message} (at position {pos})\n  {line}\n  {' ' * column}^"
