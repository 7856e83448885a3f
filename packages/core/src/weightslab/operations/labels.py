"""Label corrections: set a class label, accept the suggested label, revert — by ids or by query;
and the export of every correction (id, split, original, corrected, who, when).

A correction applies live (the watched loader yields it from the next batch on), keeps the
original label (``original_label`` column), is audited, persisted like tags and discards, and
changes the experiment hash like any data edit (a new branch on the next resume).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from weightslab.labels import ORIGINAL, LabelRecord, class_labels, persist_rows, split_is_regression
from weightslab.labels import UnsupportedTarget as UnsupportedTarget
from weightslab.operations._base import (
    SDK,
    Caller,
    InvalidRequest,
    audited,
    data_lock,
    main_lock,
    names,
    text,
)
from weightslab.operations.edits import (
    MAX_ID,
    MAX_IDS,
    MAX_IDS_SHOWN,
    audited_target,
    rows_of_ids,
    rows_of_query,
)
from weightslab.operations.samples import QueryLike

ACTIONS = ("relabel", "relabel_to_suggestion", "revert_label")
EXPORT_FORMATS = ("csv", "json")
EXPORT_FIELDS = ("id", "split", "original", "corrected", "by", "at")


@dataclass(frozen=True)
class RelabelRequest:
    action: str = "relabel"  # relabel | relabel_to_suggestion | revert_label
    ids: tuple[str, ...] | None = None  # exactly one of ids / query
    query: QueryLike = None
    split: str = ""  # restrict to one split (empty = any)
    label: Any = None  # relabel: the new class index (an integer, or its decimal text)
    query_field: str = "query"
    ids_field: str = "ids"
    label_field: str = "label"

    def audit_params(self) -> dict[str, Any]:
        return {"action": self.action, "split": self.split or None,
                "label": self.label if isinstance(self.label, (int, str)) else None,
                **audited_target(self.ids, self.query)}


@dataclass(frozen=True)
class RelabelResult:
    action: str
    matched: int
    changed: int  # 0 when re-applied: idempotent
    sample_ids: tuple[str, ...]  # first 1000 matched ids
    without_suggestion: int = 0  # relabel_to_suggestion: matched rows the run has no suggestion for yet
    samples: tuple[str, ...] = ()  # the matched rows as ``split:id`` (ids repeat across splits)


MAX_CLASS_INDEX = (1 << 31) - 1
_DIGITS = frozenset("0123456789")


def class_index(value: Any, field: str = "label") -> int:
    """A class index from an int or its decimal text; anything else names the field."""
    expected = f"expected a class index (an integer 0..{MAX_CLASS_INDEX}, or its decimal text)"
    shown = _short(value)  # a 5000-digit text or 1e300 stays readable in the message
    if isinstance(value, bool) or value is None:
        raise InvalidRequest.of(field, shown, expected)
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)) and float(value).is_integer():
        number = int(value)
    elif isinstance(value, str):
        digits = value.strip().removeprefix("+")
        # ASCII digits only: str.isdigit() also accepts '²' and '٣', which int() refuses or reads
        if not digits or len(digits) > 12 or not set(digits) <= _DIGITS:
            raise InvalidRequest.of(field, shown, expected)
        number = int(digits)
    else:
        raise InvalidRequest.of(field, shown, expected)
    if number < 0 or number > MAX_CLASS_INDEX:
        raise InvalidRequest.of(field, shown, expected)
    return number


class _Shown:
    """Text shown unquoted in an error message (``InvalidRequest.of`` quotes ``str`` values)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def _short(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= 40 else value[:37] + "..."
    if isinstance(value, (float, np.floating)):
        return float(value)
    text = repr(value) if not isinstance(value, (int, np.integer)) or isinstance(value, bool) else str(value)
    if len(text) > 40:
        text = f"{float(value):g}" if isinstance(value, (int, np.integer)) else text[:37] + "..."
    return _Shown(text)


def caller_text(caller: Caller) -> str:
    """Who made a correction, for the export: the transport plus what it knows of the peer."""
    parts = [caller.transport]
    for key in ("user", "subject", "token_fingerprint", "peer"):
        value = caller.identity.get(key)
        if value:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _rows(experiment: Any, request: RelabelRequest, split: str) -> np.ndarray:
    if request.ids is not None:
        ids = names(request.ids, request.ids_field, max_items=MAX_IDS, max_len=MAX_ID)
        if not ids:
            raise InvalidRequest(request.ids_field, "expected at least one sample id")
        # as every edit: unknown ids/splits named, an id held by several splits needs its split
        rows = rows_of_ids(experiment, ids, split, request.ids_field)
    else:
        rows = rows_of_query(experiment, request.query, split, request.query_field)
    _, first = np.unique(rows, return_index=True)
    return np.asarray(rows)[np.sort(first)].astype(np.int64)  # once each, in request order


def relabel_samples(experiment: Any, request: RelabelRequest, caller: Caller = SDK) -> RelabelResult:
    with audited(experiment, caller, "relabel_samples", request.audit_params()) as entry:
        if request.action not in ACTIONS:
            raise InvalidRequest.of("action", request.action, f"expected one of {', '.join(ACTIONS)}")
        split = text(request.split, "split")
        if (request.ids is None) == (request.query is None):
            raise InvalidRequest("target", "give ids or query (exactly one)")
        label = class_index(request.label, request.label_field) if request.action == "relabel" else -1
        if request.action != "relabel" and request.label not in (None, ""):
            raise InvalidRequest(request.label_field, f"only the action 'relabel' takes a label "
                                                      f"({request.action} does not)")
        if not experiment.started:
            experiment.start()
        rows = _rows(experiment, request, split)
        experiment.recorder.drain()  # the latest recorded labels, before the table lock
        with main_lock(experiment), data_lock(experiment):
            changed, without = _apply(experiment, request.action, rows, label, caller_text(caller))
        entry.result = {"matched": int(len(rows)), "changed": int(len(changed))}
    shown = rows[:MAX_IDS_SHOWN]
    table = experiment.table
    return RelabelResult(action=request.action, matched=int(len(rows)), changed=int(len(changed)),
                         sample_ids=tuple(str(s) for s in table.sample_id[shown]), without_suggestion=without,
                         samples=tuple(f"{sp}:{sid}" for sp, sid in zip(table.split[shown].tolist(),
                                                                         table.sample_id[shown].tolist(),
                                                                         strict=True)))


def _apply(experiment: Any, action: str, rows: np.ndarray, label: int, by: str) -> tuple[np.ndarray, int]:
    """Change the labels of ``rows`` (caller holds the main and table locks); the changed rows."""
    table = experiment.table
    edits = experiment.label_edits
    if len(rows) == 0:
        return rows, 0
    for split in sorted({str(s) for s in table.split[rows].tolist()}):
        if split_is_regression(table, split):
            raise UnsupportedTarget(f"relabel is not supported for this target type: split {split!r} has "
                                    "non-integer labels (regression targets); only class-index labels can "
                                    "be corrected")
    current = class_labels(table, rows)
    original_col = table.numeric.get(ORIGINAL)
    previous = original_col[rows] if original_col is not None else np.full(len(rows), np.nan)
    edited = np.isfinite(previous)
    original = np.where(edited, previous, current)
    without = 0
    if action == "revert_label":
        target = original
    elif action == "relabel":
        n_classes = experiment.suggestions.n_classes
        if n_classes and label >= n_classes:
            raise InvalidRequest.of("label", label, f"out of range: the model has {n_classes} classes "
                                                    f"(expected 0..{n_classes - 1})")
        if not n_classes:  # no logits seen yet: a class beyond the dataset's would crash the loss
            splits = sorted({str(s) for s in table.split[rows].tolist()})
            highest = _highest_label(table, splits)
            if label > highest:
                raise InvalidRequest.of("label", label, (
                    f"out of range: the labels of split {', '.join(map(repr, splits))} go up to {highest} and "
                    f"the model's number of classes is not known yet (expected 0..{highest}; a larger class "
                    "is accepted once a watched loss has seen the model's logits)"))
        target = np.full(len(rows), float(label))
    else:
        suggested = experiment.suggestions.suggestion(rows).astype(np.float64)
        missing = suggested < 0
        without = int(missing.sum())
        target = np.where(missing, current, suggested)
    changed_mask = (target != current) | ((target == original) & edited)
    rows, target, original = rows[changed_mask], target[changed_mask], original[changed_mask]
    if len(rows) == 0:
        return rows, without
    back = target == original  # back to the original label: no correction left
    table.set_numeric("label", rows, target)
    table.set_numeric(ORIGINAL, rows, np.where(back, np.nan, original))
    now = time.time()
    edits.clear(rows[back])
    edits.set(rows[~back], target[~back].astype(np.int64), by, now)
    persist_rows(experiment, rows)
    return rows, without


def _highest_label(table: Any, splits: list[str]) -> int:
    """The largest class index the splits' samples have or had (current and original labels)."""
    n = table.n
    mask = np.zeros(n, dtype=bool)
    for split in splits:  # as split_is_regression: no text copy of the split column
        mask |= table.split[:n] == split
    highest = 0
    for name in ("label", ORIGINAL):
        column = table.numeric.get(name)
        if column is not None:
            values = column[:n][mask]
            values = values[np.isfinite(values)]
            if values.size:
                highest = max(highest, int(values.max()))
    return highest


# -- export ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportLabelsRequest:
    split: str = ""  # only this split (empty = every split)


@dataclass(frozen=True)
class ExportLabelsResult:
    records: tuple[LabelRecord, ...]

    def rows(self) -> list[dict[str, Any]]:
        """One plain dict per correction (the export's fields, ``at`` as ISO 8601 UTC)."""
        return [record_dict(r) for r in self.records]


def record_dict(record: LabelRecord) -> dict[str, Any]:
    original: Any = record.original
    if isinstance(original, float):
        original = None if math.isnan(original) else int(original) if original.is_integer() else original
    at = "" if math.isnan(record.at) else datetime.fromtimestamp(record.at, tz=UTC).isoformat(
        timespec="seconds")
    return {"id": record.sample_id, "split": record.split, "original": original, "corrected": record.corrected,
            "by": record.by, "at": at}


def export_labels(experiment: Any, request: ExportLabelsRequest | None = None) -> ExportLabelsResult:
    """Every corrected label (read-only; no audit record)."""
    request = request or ExportLabelsRequest()
    split = text(request.split, "split")
    experiment.recorder.drain()
    with data_lock(experiment):
        splits = sorted(experiment.table.splits())
        if split and split not in splits:  # a typo must not read as "no corrections"
            raise InvalidRequest.of("split", split, "unknown split; known splits: "
                                                    + (", ".join(splits) or "none yet"))
        records = experiment.label_edits.records(experiment.table)
    if split:
        records = [r for r in records if r.split == split]
    return ExportLabelsResult(records=tuple(records))


def write_labels(rows: list[dict[str, Any]], path: str | Path, fmt: str | None = None) -> Path:
    """Write export rows as CSV or JSON (a list of objects); the format from ``fmt`` or the suffix."""
    target = Path(path)
    fmt = (fmt or target.suffix.lstrip(".") or "csv").lower()
    if fmt not in EXPORT_FORMATS:
        raise InvalidRequest.of("format", fmt, f"expected one of {', '.join(EXPORT_FORMATS)}")
    if target.is_dir():
        target = target / f"labels.{fmt}"
    tmp = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            if fmt == "csv":
                writer = csv.DictWriter(fh, fieldnames=list(EXPORT_FIELDS))
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in EXPORT_FIELDS})
            else:
                json.dump([{k: row.get(k) for k in EXPORT_FIELDS} for row in rows], fh, indent=1)
                fh.write("\n")
        tmp.replace(target)  # never a half-written export under the final name
    except OSError as exc:  # name the file asked for, not our temporary one
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, f"cannot write the label export {str(target)!r}: "
                                 f"{exc.strerror or exc}") from exc
    return target
