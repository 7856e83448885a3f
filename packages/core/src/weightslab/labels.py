"""Corrected class labels: what a reviewer set, kept beside the original, applied live.

:class:`LabelEdits` maps sample-table rows to their corrected class index. A watched loader
replaces the labels of corrected rows in every batch it yields (:meth:`LabelEdits.overlay`), so
training uses a correction from the next batch on without touching the user's dataset; the
recorder applies the same overlay to the targets it records. The table keeps the corrected
value in ``label`` and the original in the ``original_label`` column (NaN = never corrected),
and both reach the sample store like tags and discards do (``StoredRows.metadata``), so a
restarted script reloads its corrections before its loaders yield a batch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from weightslab._torch import is_tensor

ORIGINAL = "original_label"
# Persisted beside ORIGINAL (sample-store metadata): who corrected the label, and when (unix s).
EDITED_BY = "label_edited_by"
EDITED_AT = "label_edited_at"


class UnsupportedTarget(ValueError):
    """The samples' labels are not class indices (regression targets, masks, boxes, text)."""


@dataclass(frozen=True)
class LabelRecord:
    split: str
    sample_id: str
    original: float
    corrected: int
    by: str
    at: float  # unix seconds


class LabelEdits:
    """Row -> corrected class index; thread-safe, O(batch) per loader batch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dense = np.full(0, -1, np.int64)  # row -> corrected class (-1 = none), for batch lookups
        self.by: dict[int, str] = {}
        self.at: dict[int, float] = {}
        self.count = 0
        self.version = 0

    def __len__(self) -> int:
        return self.count

    def set(self, rows: np.ndarray, labels: np.ndarray, by: str | list[str], at: float | list[float]) -> None:
        """Correct ``rows``; ``by``/``at``: one value for all rows or one per row."""
        rows = np.asarray(rows, dtype=np.int64)
        bys = by if isinstance(by, list) else [by] * len(rows)
        ats = at if isinstance(at, list) else [at] * len(rows)
        with self._lock:
            if len(rows) and int(rows.max()) >= self._dense.shape[0]:
                grown = np.full(max(int(rows.max()) + 1, 2 * self._dense.shape[0], 64), -1, np.int64)
                grown[: self._dense.shape[0]] = self._dense
                self._dense = grown
            self._dense[rows] = np.asarray(labels, dtype=np.int64)
            for row, who, when in zip(rows.tolist(), bys, ats, strict=True):
                self.by[row], self.at[row] = who, when
            self.count = int(np.count_nonzero(self._dense >= 0))
            self.version += 1

    def clear(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        with self._lock:
            rows = rows[rows < self._dense.shape[0]]
            self._dense[rows] = -1
            for row in rows.tolist():
                self.by.pop(row, None)
                self.at.pop(row, None)
            self.count = int(np.count_nonzero(self._dense >= 0))
            self.version += 1

    def corrected(self, rows: np.ndarray) -> np.ndarray:
        """Corrected class per row (-1 where none)."""
        rows = np.asarray(rows, dtype=np.int64)
        dense = self._dense  # replaced, never resized in place: a stale view is still consistent
        out = np.full(rows.shape[0], -1, np.int64)
        inside = rows < dense.shape[0]
        out[inside] = dense[rows[inside]]
        return out

    def rows(self) -> np.ndarray:
        return np.flatnonzero(self._dense >= 0)

    def overlay(self, rows: np.ndarray, labels: Any) -> Any:
        """``labels`` of a batch of ``rows`` with corrections applied (a copy; the input is kept).

        1-D class labels only (a tensor, numpy array or list): anything else is returned as is."""
        if not self.count or labels is None:
            return labels
        fix = self.corrected(rows)
        hit = np.flatnonzero(fix >= 0)
        if hit.size == 0:
            return labels
        if is_tensor(labels):
            if labels.ndim != 1 or labels.shape[0] != len(fix):
                return labels
            import torch

            out = labels.clone()
            out[torch.as_tensor(hit, device=labels.device)] = torch.as_tensor(
                fix[hit], dtype=labels.dtype, device=labels.device)
            return out
        if isinstance(labels, np.ndarray):
            # "b": binary labels as numpy bools (a torch bool tensor is handled above)
            if labels.ndim != 1 or labels.shape[0] != len(fix) or labels.dtype.kind not in "biuf":
                return labels
            out_np = labels.copy()
            out_np[hit] = fix[hit]
            return out_np
        if isinstance(labels, list) and len(labels) == len(fix):
            out_list = list(labels)
            for i in hit.tolist():
                out_list[i] = int(fix[i])
            return out_list
        return labels

    def hash_text(self, table: Any) -> str:
        """The corrections as text for the experiment hash ("" when there are none)."""
        rows = self.rows()
        if rows.size == 0:
            return ""
        fix = self._dense[rows]
        return "\n".join(sorted(f"{table.split[r]}/{table.sample_id[r]}={c}"
                                for r, c in zip(rows.tolist(), fix.tolist(), strict=True)))

    def records(self, table: Any) -> list[LabelRecord]:
        """Every correction, in table order (exports)."""
        rows = self.rows()
        original = table.numeric.get(ORIGINAL)
        out = []
        for row in rows.tolist():
            out.append(LabelRecord(
                split=str(table.split[row]), sample_id=str(table.sample_id[row]),
                original=float(original[row]) if original is not None else float("nan"),
                corrected=int(self._dense[row]), by=self.by.get(row, ""), at=float(self.at.get(row, float("nan")))))
        return out


def class_labels(table: Any, rows: np.ndarray) -> np.ndarray:
    """The rows' current labels as class indices (float64), or :class:`UnsupportedTarget`."""
    text = table.text.get("label")
    if text is not None:
        kinds = [v for v in text[rows].tolist() if v is not None]
        if kinds:
            raise UnsupportedTarget(
                f"relabel is not supported for this target type: the samples' labels are "
                f"{_kind(kinds[0])} (e.g. {_short(kinds[0])}); only class-index labels can be corrected")
    numeric = table.numeric.get("label")
    values = numeric[rows] if numeric is not None else np.full(len(rows), np.nan)
    unknown = ~np.isfinite(values)
    if unknown.any():
        first = int(rows[np.flatnonzero(unknown)[0]])
        raise UnsupportedTarget(
            f"sample {table.split[first]}/{table.sample_id[first]} has no class label recorded yet, so its "
            "original could not be kept: watch the dataset with preload_labels=True (or labels=...), or "
            "relabel it after a watched loss has seen it with its targets")
    fractional = np.mod(values, 1) != 0
    if fractional.any():
        first = int(np.flatnonzero(fractional)[0])
        raise UnsupportedTarget(
            f"relabel is not supported for this target type: label {values[first]:g} of sample "
            f"{table.split[rows[first]]}/{table.sample_id[rows[first]]} is not a class index "
            "(a regression target?); only class-index labels can be corrected")
    return values


def split_is_regression(table: Any, split: str) -> bool:
    """Whether a split's labels include a non-integer value (a regression target)."""
    numeric = table.numeric.get("label")
    if numeric is None:
        return False
    n = table.n
    values = numeric[:n][table.split[:n] == split]
    values = values[np.isfinite(values)]
    return bool(values.size and (np.mod(values, 1) != 0).any())


def restore(table: Any, edits: LabelEdits, rows: np.ndarray, metadata: dict[str, np.ndarray],
            mask: np.ndarray) -> None:
    """Reload persisted corrections of ``rows`` (their stored entries: ``metadata[...][mask]``)."""
    original = metadata.get(ORIGINAL)
    if original is None:
        return
    values = np.asarray(original[mask], dtype=np.float64)
    hit = np.flatnonzero(np.isfinite(values))
    if hit.size == 0:
        return
    label = table.numeric.get("label")
    if label is None:
        return
    r = rows[hit]
    corrected = label[r]
    ok = np.isfinite(corrected)
    r, corrected, values = r[ok], corrected[ok], values[hit][ok]
    table.set_numeric(ORIGINAL, r, values)
    by = metadata.get(EDITED_BY)
    at = metadata.get(EDITED_AT)
    bys = [str(v or "") for v in by[mask][hit][ok].tolist()] if by is not None else [""] * len(r)
    ats = [float(v) if v is not None else float("nan") for v in at[mask][hit][ok].tolist()] \
        if at is not None else [float("nan")] * len(r)
    edits.set(r, corrected.astype(np.int64), bys, ats)


def reapply(table: Any, edits: LabelEdits, rows: np.ndarray) -> None:
    """After a loader registered (or re-read) the dataset's labels: corrected rows keep theirs."""
    if not len(edits):
        return
    fix = edits.corrected(rows)
    hit = np.flatnonzero(fix >= 0)
    if hit.size:
        table.set_numeric("label", np.asarray(rows)[hit], fix[hit].astype(np.float64))


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "arrays (masks, boxes or multi-label targets)"
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- checkpoints ---------------------------------------------------------------------------------


def checkpoint_state(table: Any, edits: LabelEdits) -> dict[str, list[Any]]:
    """The corrections as a checkpoint stores them (numbers, text and lists: ``weights_only`` loads)."""
    rows = edits.rows()
    original = table.numeric.get(ORIGINAL)
    return {
        "split": [str(s) for s in table.split[rows].tolist()],
        "sample_id": [str(s) for s in table.sample_id[rows].tolist()],
        "corrected": [int(v) for v in edits.corrected(rows).tolist()],
        "original": [float(v) for v in original[rows].tolist()] if original is not None else [],
        "by": [edits.by.get(r, "") for r in rows.tolist()],
        "at": [float(edits.at.get(r, float("nan"))) for r in rows.tolist()],
    }


def restore_checkpoint_state(table: Any, edits: LabelEdits, state: Any) -> np.ndarray:
    """Make the corrections those of a checkpoint (``None``: one saved before corrections existed,
    which leaves them as they are). Caller holds the table lock; returns the rows that changed."""
    if not isinstance(state, dict):
        return np.zeros(0, dtype=np.int64)
    current = edits.rows()
    if current.size:  # back to the original labels, then the checkpoint's corrections on top
        table.set_numeric("label", current, table.numeric[ORIGINAL][current])
        table.set_numeric(ORIGINAL, current, np.full(current.size, np.nan))
        edits.clear(current)
    index = table._index
    keep = [i for i, key in enumerate(zip(state["split"], state["sample_id"], strict=True)) if key in index]
    rows = np.asarray([index[(state["split"][i], state["sample_id"][i])] for i in keep], dtype=np.int64)
    if rows.size:
        corrected = np.asarray([state["corrected"][i] for i in keep], dtype=np.int64)
        table.set_numeric(ORIGINAL, rows, np.asarray([state["original"][i] for i in keep], dtype=np.float64))
        table.set_numeric("label", rows, corrected.astype(np.float64))
        edits.set(rows, corrected, [str(state["by"][i]) for i in keep], [float(state["at"][i]) for i in keep])
    return np.union1d(current, rows)


def persist_rows(experiment: Any, rows: np.ndarray) -> None:
    """Write the rows' label and correction like tags and discards (sample-store row metadata);
    a row without a correction is written with ``original_label`` NaN (restored as uncorrected)."""
    store = experiment.store
    rows = np.asarray(rows, dtype=np.int64)
    if not getattr(store, "persistent", False) or rows.size == 0:
        return
    from weightslab.store import StoredRows

    table, edits = experiment.table, experiment.label_edits
    original = table.numeric.get(ORIGINAL)
    who = np.empty(rows.size, dtype=object)
    who[:] = [edits.by.get(r, "") for r in rows.tolist()]
    store.update_rows(StoredRows(
        split=table.split[rows].copy(), sample_id=table.sample_id[rows].copy(),
        label=table.numeric["label"][rows].astype(np.float64), discarded=table.discarded[rows].copy(),
        metadata={ORIGINAL: original[rows].astype(np.float64) if original is not None else np.full(rows.size, np.nan),
                  EDITED_BY: who, EDITED_AT: np.asarray([edits.at.get(r, np.nan) for r in rows.tolist()])}))
