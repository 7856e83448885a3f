"""Split and tag names a request refers to: checked against the table, the known ones listed.

A typo (``--split tst``, ``has:nosiy``) would otherwise match nothing and look like an empty
result; every front end (CLI, gRPC, SDK, agent) reaches these checks through the operations.
An unknown split is an error (splits are fixed by the watched loaders); an unknown tag is a
note in the reply (a filter on a tag not used yet is legitimate and matches nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from weightslab.operations._base import InvalidRequest

MAX_LISTED = 20


def listing(names: Iterable[str]) -> str:
    """``a, b, c`` (at most :data:`MAX_LISTED`), or ``none``."""
    items = sorted(str(n) for n in names)
    shown = ", ".join(items[:MAX_LISTED]) + (f", ... ({len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else "")
    return shown or "none"


def known_splits(frame: Any) -> list[str]:
    return [str(n) for n in frame.split_names()]


def check_split(frame: Any, split: str, field: str = "split") -> None:
    """``split`` (non-empty) must be a split of the table."""
    if split and split not in known_splits(frame):
        raise InvalidRequest.of(field, split, f"unknown split; known splits: {listing(known_splits(frame))}")


def _walk(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        current = stack.pop()
        if current is None:
            continue
        yield current
        stack.extend(getattr(current, "filters", ()) or ())
        inner = getattr(current, "filter", None)
        if inner is not None:
            stack.append(inner)


def check_query_names(frame: Any, query: Any, field: str = "query") -> tuple[str, ...]:
    """Split values compared with ``split`` must exist (else :class:`InvalidRequest`); tags named by
    ``has:``/``tag:`` that no sample has yet give a note (a filter on a tag about to be used is
    legitimate: it matches nothing until the first sample gets it)."""
    from weightslab.query.spec import CategoryEquals, Compare, HasTag, In, NotHasTag

    splits = set(known_splits(frame))
    notes: list[str] = []
    for node in _walk(getattr(query, "filter", None)):
        if isinstance(node, (Compare, In)) and node.column == "split" and splits:
            values = node.values if isinstance(node, In) else (node.value,) if node.op in ("==", "=", "!=") else ()
            for value in values:
                if isinstance(value, str) and value not in splits:
                    raise InvalidRequest(field, f"unknown split {value!r}; known splits: {listing(splits)}")
        elif isinstance(node, (HasTag, NotHasTag)) and node.tag not in frame.tags \
                and node.tag not in frame.categories:  # a categorical one: the engine's own error
            notes.append(f"no sample has tag {node.tag!r} (known tags: {listing(frame.tags)})")
        elif isinstance(node, CategoryEquals) and node.tag not in frame.categories and node.tag not in frame.tags:
            notes.append(f"no sample has categorical tag {node.tag!r} "
                         f"(known categorical tags: {listing(frame.categories)})")
    return tuple(dict.fromkeys(notes))
