"""Sample edits: tag/untag, set/clear a categorical tag, discard/restore — by ids or by a full
query (filter, ``top N by col``, sort), idempotent, audited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from weightslab.operations._base import SDK, Caller, InvalidRequest, audited, lock_timeout, names, text
from weightslab.operations._frames import snapshot
from weightslab.operations.samples import QueryLike, parse_query, with_changes

ACTIONS = ("tag", "untag", "set_category", "clear_category", "discard", "restore")
TAG_ACTIONS = ("tag", "untag", "set_category", "clear_category")
MAX_IDS = 1_000_000
MAX_ID = 1024
MAX_IDS_AUDITED = 100
MAX_IDS_SHOWN = 1000


@dataclass(frozen=True)
class EditRequest:
    action: str  # tag | untag | set_category | clear_category | discard | restore
    ids: tuple[str, ...] | None = None  # exactly one of ids / query
    query: QueryLike = None
    split: str = ""  # restrict to one split (empty = any)
    tag: str = ""  # tag / categorical tag name
    value: str = ""  # categorical value (set_category)
    query_field: str = "query"  # how errors name the query and the ids (e.g. "query.text", "ids.ids" over gRPC)
    ids_field: str = "ids"

    def audit_params(self) -> dict[str, Any]:
        """The audit record's ``params``: the same whatever the transport."""
        params: dict[str, Any] = {"action": self.action, "split": self.split or None, "tag": self.tag or None,
                                  "value": self.value or None}
        if self.ids is not None:
            params["ids_count"] = len(self.ids)
            params["ids"] = list(self.ids[:MAX_IDS_AUDITED])
        else:
            params["query"] = _query_text(self.query)
        return params


@dataclass(frozen=True)
class EditResult:
    action: str
    matched: int
    changed: int  # 0 when re-applied: edits are idempotent
    sample_ids: tuple[str, ...]  # first 1000 matched ids


def _query_text(query: QueryLike) -> Any:
    if query is None or isinstance(query, str):
        return query
    dump = getattr(query, "model_dump", None)
    return dump(mode="json", exclude_defaults=True) if callable(dump) else query


def rows_of_query(experiment: Any, query: QueryLike, split: str = "", field: str = "query") -> np.ndarray:
    """Table rows a query selects: filter, then ``top N by col``, in query order; the page is
    ignored (an edit by query applies to every matching row)."""
    from pydantic import BaseModel

    from weightslab.query import Query, QueryError, ordered_indices

    if isinstance(query, Mapping) and "op" in query:  # a bare filter spec
        query = {"filter": dict(query)}
    elif isinstance(query, BaseModel) and not isinstance(query, Query):  # a Filter model
        query = Query(filter=query)  # type: ignore[arg-type]  # validated by pydantic
    parsed = parse_query(query, field)
    if parsed.group is not None:
        raise InvalidRequest("query", "grouped queries cannot select samples to edit")
    if parsed.filter is None and parsed.top_k is None:
        raise InvalidRequest("query", 'empty: it would edit every sample; give a filter (e.g. split == "train")')
    frame = snapshot(experiment)
    try:
        rows = ordered_indices(frame, with_changes(parsed, sort=()))
    except QueryError as exc:
        raise InvalidRequest(field, str(exc)) from None
    if split:
        rows = rows[frame.split[rows] == split]
    return np.asarray(rows, dtype=np.int64)


def edit_samples(experiment: Any, request: EditRequest, caller: Caller = SDK) -> EditResult:
    with audited(experiment, caller, "edit_samples", request.audit_params()) as entry:
        if request.action not in ACTIONS:
            raise InvalidRequest.of("action", request.action, f"expected one of {', '.join(ACTIONS)}")
        split = text(request.split, "split")
        tag = text(request.tag, "tag", required=request.action in TAG_ACTIONS)
        value = text(request.value, "value", required=request.action == "set_category", max_len=MAX_ID)
        if (request.ids is None) == (request.query is None):
            raise InvalidRequest("target", "give ids or query (exactly one)")
        kwargs: dict[str, Any] = {"tag": tag or None, "value": value or None,
                                  "lock_timeout": lock_timeout(experiment)}
        if request.ids is not None:
            ids = names(request.ids, request.ids_field, max_items=MAX_IDS, max_len=MAX_ID)
            if not ids:
                raise InvalidRequest(request.ids_field, "expected at least one sample id")
            kwargs.update(ids=list(ids), split=split or None)
        else:
            # Resolved on a snapshot (no lock held); rows are append-only, so they stay valid
            # for the one atomic edit that follows.
            kwargs["rows"] = rows_of_query(experiment, request.query, split, request.query_field)
        try:  # the core takes the main lock (bounded wait -> LockTimeout), then the table lock
            result = experiment.edit(request.action, **kwargs)
        except ValueError as exc:
            message = str(exc)
            if "tag" in message and ("name" in message or "needs" in message):
                raise InvalidRequest("tag", message) from None
            raise
        entry.result = {"matched": int(result["matched"]), "changed": int(result["changed"])}
    return EditResult(action=request.action, matched=int(result["matched"]), changed=int(result["changed"]),
                      sample_ids=tuple(str(s) for s in list(result.get("sample_ids", []))[:MAX_IDS_SHOWN]))
