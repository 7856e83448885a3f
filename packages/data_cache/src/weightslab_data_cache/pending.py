"""What the training thread enqueues, and how the flusher turns it into a segment.

``Pending.add_*`` run on the caller's thread: validation and one numpy copy, nothing else.
``build_segment`` runs on the flusher thread: dictionary encoding and concatenation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from weightslab.narrow import narrowed
from weightslab.store import StoredRows

from weightslab_data_cache import columns, rows
from weightslab_data_cache.codec import Codec
from weightslab_data_cache.segment import (
    CurveBlock,
    HistoryBlock,
    PredBlock,
    PredSignature,
    SegmentData,
    merge_runs,
)


@dataclass
class _HistoryOp:
    split: str
    branch: str
    ids: np.ndarray
    steps: np.ndarray  # one per value, or 0-d: the step of every value
    values: np.ndarray

    def step_array(self) -> np.ndarray:
        """The step of each value."""
        return np.broadcast_to(self.steps, self.ids.shape) if self.steps.ndim == 0 else self.steps


@dataclass
class _PredOp:
    split: str
    ids: np.ndarray
    step: int
    value: np.ndarray


@dataclass
class _RowsOp:
    split: np.ndarray  # per row, or 0-d: the split of every row
    ids: np.ndarray
    columns: dict[rows.ColumnKey, np.ndarray]


def _ids(sample_ids: Any) -> np.ndarray:
    """A queued copy of a batch's ids: int ids as int32 when they fit (half the bytes while queued)."""
    arr = np.asarray(sample_ids).reshape(-1)
    small = narrowed(arr) if arr.dtype.kind in "iu" else arr
    return small if small is not arr else np.array(arr, copy=True)


@dataclass
class Pending:
    """Queued operations in arrival order (per signal for history)."""

    history: dict[str, list[_HistoryOp]] = field(default_factory=dict)
    curves: list[tuple[str, str, str, int, float]] = field(default_factory=list)
    predictions: list[_PredOp] = field(default_factory=list)
    rows: list[_RowsOp] = field(default_factory=list)
    values: int = 0  # number of queued values, for back-pressure

    def __bool__(self) -> bool:
        return bool(self.history or self.curves or self.predictions or self.rows)

    def add_history(self, signal: str, split: str, sample_ids: Any, steps: Any, values: Any,
                    branch: str) -> None:
        ids = _ids(sample_ids)
        vals = np.asarray(values)  # float32 stays float32 while queued; segments store float64
        vals = (vals.copy() if vals.dtype in (np.float32, np.float64) else vals.astype(np.float64)).reshape(-1)
        st = np.asarray(steps, dtype=np.int64)
        n_steps = ids.shape[0] if st.ndim == 0 else st.size
        if not (ids.shape[0] == vals.shape[0] == n_steps):
            raise ValueError(f"append_history({signal!r}): {ids.shape[0]} ids, {n_steps} steps, "
                             f"{vals.shape[0]} values")
        # One step for the whole batch (what a recorder sends) is queued once, not once per value.
        st = np.array(st.flat[0] if st.ndim and n_steps and (st == st.flat[0]).all() else st.reshape(-1), copy=True)
        self.history.setdefault(str(signal), []).append(_HistoryOp(str(split), str(branch), ids, st, vals))
        self.values += vals.shape[0]

    def add_curve(self, signal: str, split: str, branch: str, step: int, value: float) -> None:
        self.curves.append((str(signal), str(split), str(branch), int(step), float(value)))
        self.values += 1

    def add_predictions(self, split: str, sample_ids: Any, step: int, predictions: Any) -> None:
        ids = _ids(sample_ids)
        value = np.array(predictions, copy=True)
        if value.ndim == 0 or value.shape[0] != ids.shape[0]:
            raise ValueError(f"append_predictions: {ids.shape[0]} ids but predictions of shape {value.shape}")
        self.predictions.append(_PredOp(str(split), ids, int(step), value))
        self.values += int(value.size)

    def add_rows(self, stored: StoredRows) -> None:
        ids = _ids(stored.sample_id)
        split = np.asarray(stored.split)
        if split.ndim and (split.shape[0] != ids.shape[0] or split.size != ids.shape[0]):
            raise ValueError(f"update_rows: {split.shape[0]} splits for {ids.shape[0]} sample ids")
        if split.ndim > 1:  # a column of splits, (n, 1): one per row
            split = split.reshape(-1)
        if split.ndim == 1 and split.size and split.strides[0] == 0:  # a view of one split name
            split = split[:1].reshape(())
        if split.ndim == 0:  # one split for every row: queued once, not a pointer per row
            split = np.array(split.item(), dtype=object)
        self.rows.append(_RowsOp(np.array(split, copy=True), ids, rows.columns_of(stored)))
        self.values += ids.shape[0]

    def take_rows(self, limit: int) -> Pending | None:
        """The first row updates, about ``limit`` rows of them (at least one update), taken out of
        this batch when more than ``limit`` rows are queued; None when they all fit. Every other
        operation stays here, to be written with the last row updates: a crash between the
        writes keeps a prefix of the operations, as one write would."""
        total, keep = 0, 0
        for op in self.rows:
            if keep and total + op.ids.shape[0] > limit:
                break
            total += op.ids.shape[0]
            keep += 1
        if keep == len(self.rows):
            return None
        head = Pending(rows=self.rows[:keep])
        head.values = total
        self.rows = self.rows[keep:]
        self.values -= total
        return head

    def put_back(self, head: Pending) -> None:
        """Undo :meth:`take_rows` (its write failed): the rows go first again."""
        self.rows = head.rows + self.rows
        self.values += head.values

    def extend(self, later: Pending) -> None:
        """Append ``later``'s operations after ours (used to re-queue a batch that failed to write)."""
        for signal, ops in later.history.items():
            self.history.setdefault(signal, []).extend(ops)
        self.curves.extend(later.curves)
        self.predictions.extend(later.predictions)
        self.rows.extend(later.rows)
        self.values += later.values


def _encode_ids(codec: Codec, arrays: list[np.ndarray]) -> np.ndarray:
    if all(a.dtype.kind in "iu" for a in arrays):
        return codec.encode(np.concatenate(arrays)) if arrays else np.zeros(0, dtype=np.int64)
    return np.concatenate([codec.encode(a) for a in arrays])


def _history_block(ops: list[_HistoryOp], names: Codec, ids: Codec) -> HistoryBlock:
    sizes = np.array([op.ids.shape[0] for op in ops], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    runs = np.array([[s, names.code(op.split), names.code(op.branch)] for s, op in zip(starts, ops, strict=True)],
                    dtype=np.int64).reshape(-1, 3)
    return HistoryBlock(
        sid=_encode_ids(ids, [op.ids for op in ops]),
        step=np.concatenate([op.step_array() for op in ops]),
        value=np.concatenate([op.values for op in ops]).astype(np.float64, copy=False),
        runs=merge_runs(runs[sizes > 0]) if (sizes > 0).any() else runs[:0],
    )


def _pred_signature(split: int, value: np.ndarray) -> tuple[PredSignature, np.ndarray]:
    """Storage of one predictions array: raw (lossless, same dtype), text, or JSON per row."""
    kind = value.dtype.kind
    if kind in "biufcS":
        return PredSignature(split, "raw", value.dtype.str, tuple(value.shape[1:])), value
    if kind == "U" and value.ndim == 1:
        return PredSignature(split, "str", "U", ()), columns.object_array(value.tolist())
    rows_ = [columns.to_json(v.tolist() if isinstance(v, np.ndarray) else v) for v in value]
    return PredSignature(split, "json", "O", ()), columns.object_array(rows_)


def _prediction_blocks(ops: list[_PredOp], names: Codec, ids: Codec) -> list[PredBlock]:
    grouped: dict[PredSignature, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for op in ops:
        sig, data = _pred_signature(names.code(op.split), op.value)
        sid = ids.encode(op.ids)
        grouped.setdefault(sig, []).append((sid, np.full(sid.shape[0], op.step, dtype=np.int64), data))
    return [PredBlock(sig, np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                      np.concatenate([p[2] for p in parts]))
            for sig, parts in grouped.items()]


def _row_patch(ops: list[_RowsOp], names: Codec, ids: Codec) -> rows.RowPatch:
    patches = []
    for op in ops:
        sid = ids.encode(op.ids)
        split = np.full(sid.shape[0], names.code(op.split.item()), dtype=np.int64) if op.split.ndim == 0 \
            else names.encode(op.split)
        patch = rows.RowPatch(split, sid)
        patch.columns = rows.normalized(op.columns)
        patches.append(patch)
    return rows.concat(patches)


def build_segment(pending: Pending, names: Codec, ids: Codec) -> SegmentData:
    """Encode queued operations; new dictionary entries travel with the segment."""
    seg = SegmentData()
    seg.history = {names.code(signal): _history_block(ops, names, ids) for signal, ops in pending.history.items()}
    if pending.curves:
        seg.curves = CurveBlock(
            key=np.array([[names.code(c[0]), names.code(c[1]), names.code(c[2])] for c in pending.curves],
                         dtype=np.int64),
            step=np.array([c[3] for c in pending.curves], dtype=np.int64),
            value=np.array([c[4] for c in pending.curves], dtype=np.float64),
        )
    if pending.predictions:
        seg.predictions = _prediction_blocks(pending.predictions, names, ids)
    if pending.rows:
        seg.rows = _row_patch(pending.rows, names, ids)
    seg.names_base, seg.names = names.pending()
    seg.ids_base, seg.ids = ids.pending()
    return seg
