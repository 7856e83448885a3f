"""Sample edits: tag/untag, set/clear a categorical tag, discard/restore — by ids or by a full
query (filter, ``top N by col``, sort), idempotent, audited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from weightslab.operations._base import (
    SDK,
    Caller,
    InvalidRequest,
    audited,
    data_lock,
    lock_timeout,
    names,
    text,
)
from weightslab.operations._frames import snapshot
from weightslab.operations.names import check_query_names, check_split, listing
from weightslab.operations.samples import QueryLike, parse_query, with_changes
from weightslab.table import check_name

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
        return {"action": self.action, "split": self.split or None, "tag": self.tag or None,
                "value": self.value or None, **audited_target(self.ids, self.query)}


@dataclass(frozen=True)
class EditResult:
    action: str
    matched: int
    changed: int  # 0 when re-applied: edits are idempotent
    sample_ids: tuple[str, ...]  # first 1000 matched ids
    samples: tuple[str, ...] = ()  # the same rows as ``split:id`` (ids repeat across splits)
    note: str = ""  # why nothing changed, when the edit is a no-op worth saying (unknown tag)


def audited_target(ids: tuple[str, ...] | None, query: QueryLike) -> dict[str, Any]:
    """Which samples an edit targets, as its audit record says it: the first ids, or the query."""
    if ids is not None:
        return {"ids_count": len(ids), "ids": list(ids[:MAX_IDS_AUDITED])}
    return {"query": _query_text(query)}


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
    check_split(frame, split)
    check_query_names(frame, parsed, field)  # unknown splits refused; an unknown tag simply matches nothing
    try:
        rows = ordered_indices(frame, with_changes(parsed, sort=()))
    except QueryError as exc:
        raise InvalidRequest(field, str(exc)) from None
    if split:
        rows = rows[frame.splits_at(rows) == split]
    return np.asarray(rows, dtype=np.int64)


def rows_of_ids(experiment: Any, ids: tuple[str, ...], split: str = "", field: str = "ids") -> np.ndarray:
    """Rows of sample ids: in ``split`` when given, else the one split holding each id.

    An id held by several splits (``5`` in train and in val) is refused unless a split is given,
    either for the request or per id as ``split:id`` (``val:5``): an edit never reaches a split
    the user did not mean. Unknown splits and ids are errors naming the known ones.
    """
    from weightslab.table import UnknownSamples

    if not experiment.started:
        experiment.start()
    experiment.recorder.drain()
    with data_lock(experiment):
        table = experiment.table
        index = table._index  # (split, sample_id) -> row; read under the table lock
        splits = sorted(table.splits())
        if split and split not in splits:
            raise InvalidRequest.of("split", split, f"unknown split; known splits: {listing(splits)}")
        rows: list[int] = []
        missing: list[str] = []
        shared: dict[str, list[str]] = {}
        for sid in ids:
            prefix, sep, rest = sid.partition(":")
            if sep and prefix in splits and (prefix, rest) in index and (split or prefix, sid) not in index:
                if split and prefix != split:
                    raise InvalidRequest.of(field, sid, f"names split {prefix!r} but the request is for "
                                                        f"split {split!r}")
                rows.append(index[(prefix, rest)])
                continue
            holders = [split] if split else [s for s in splits if (s, sid) in index]
            found = [index[(s, sid)] for s in holders if (s, sid) in index]
            if not found:
                missing.append(sid)
            elif len(found) > 1:
                shared[sid] = holders
            else:
                rows.append(found[0])
    if shared:
        first, where = next(iter(shared.items()))
        more = f" (and {len(shared) - 1} more)" if len(shared) > 1 else ""
        raise InvalidRequest(field, f"sample id {first!r}{more} exists in several splits ({', '.join(where)}): "
                                    f"give the split (CLI --split {where[0]}, gRPC/SDK split=) or write "
                                    f"{where[0]}:{first}")
    if missing:
        error = UnknownSamples(missing)
        hint = f" in split {split!r}" if split else f" (splits: {listing(splits)})"
        error.args = (str(error.args[0]) + hint,)  # still an UnknownSamples: callers catch that type
        raise error
    return np.asarray(sorted(set(rows)), dtype=np.int64)


def _query_note(experiment: Any, query: QueryLike, field: str) -> str:
    """Why a query selected nothing, when it names a tag no sample has (``has:nosuch``)."""
    try:
        parsed = parse_query(query, field)
    except ValueError:  # InvalidRequest, or a spec the edit itself already accepted in another form
        return ""
    return "; ".join(check_query_names(snapshot(experiment), parsed, field))


def _unknown_tag_note(experiment: Any, action: str, tag: str) -> str:
    """Removing a tag that no sample ever had changes nothing: say so, listing the known tags."""
    table = experiment.table
    if action == "untag" and tag not in table.tags:
        return f"no sample has tag {tag!r}: nothing to remove (known tags: {listing(table.tags)})"
    if action == "clear_category" and tag not in table.categories:
        return (f"no sample has categorical tag {tag!r}: nothing to clear "
                f"(known categorical tags: {listing(table.categories)})")
    return ""


def edit_samples(experiment: Any, request: EditRequest, caller: Caller = SDK) -> EditResult:
    with audited(experiment, caller, "edit_samples", request.audit_params()) as entry:
        if request.action not in ACTIONS:
            raise InvalidRequest.of("action", request.action, f"expected one of {', '.join(ACTIONS)}")
        split = text(request.split, "split")
        tag = text(request.tag, "tag", required=request.action in TAG_ACTIONS)
        value = text(request.value, "value", required=request.action == "set_category", max_len=MAX_ID)
        if (request.ids is None) == (request.query is None):
            raise InvalidRequest("target", "give ids or query (exactly one)")
        if tag:  # the tag's name is checked before the samples it names are looked up
            try:
                check_name(tag, "categorical tag" if "category" in request.action else "tag")
            except ValueError as exc:
                raise InvalidRequest("tag", str(exc)) from None
        kwargs: dict[str, Any] = {"tag": tag or None, "value": value or None,
                                  "lock_timeout": lock_timeout(experiment)}
        if request.ids is not None:
            ids = names(request.ids, request.ids_field, max_items=MAX_IDS, max_len=MAX_ID)
            if not ids:
                raise InvalidRequest(request.ids_field, "expected at least one sample id")
            kwargs["rows"] = rows_of_ids(experiment, ids, split, request.ids_field)
        else:
            # Resolved on a snapshot (no lock held); rows are append-only, so they stay valid
            # for the one atomic edit that follows.
            kwargs["rows"] = rows_of_query(experiment, request.query, split, request.query_field)
        note = _unknown_tag_note(experiment, request.action, tag)
        if not note and request.query is not None and not len(kwargs["rows"]):
            note = _query_note(experiment, request.query, request.query_field)
        try:  # the core takes the main lock (bounded wait -> LockTimeout), then the table lock
            result = experiment.edit(request.action, **kwargs)
        except ValueError as exc:
            message = str(exc)
            if "tag" in message and ("name" in message or "needs" in message):
                raise InvalidRequest("tag", message) from None
            raise
        entry.result = {"matched": int(result["matched"]), "changed": int(result["changed"])}
    shown = np.asarray(kwargs["rows"][:MAX_IDS_SHOWN], dtype=np.int64)
    table = experiment.table
    return EditResult(action=request.action, matched=int(result["matched"]), changed=int(result["changed"]),
                      sample_ids=tuple(str(s) for s in list(result.get("sample_ids", []))[:MAX_IDS_SHOWN]),
                      samples=tuple(f"{sp}:{sid}" for sp, sid in zip(table.split[shown].tolist(),
                                                                      table.sample_id[shown].tolist(), strict=True)),
                      note=note)
