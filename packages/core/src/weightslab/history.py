"""Append-only per-sample signal history and per-step curves.

Appends are O(batch): arrays are kept in chunks and consolidated lazily on read. Storage is compact
(~8 bytes per entry): rows are int32 when they fit, values float32 when that is exact, and steps and
branch codes are run-length encoded (a recorder batch has one step and one branch). Reads expand to
the full dtypes (int64 rows and steps, float64 values, int32 codes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from weightslab.narrow import fits_int32, narrowed

_MERGE_EVERY = 128  # batches appended before they are merged into one piece


def _compact_rows(rows: np.ndarray) -> np.ndarray:
    """int32 when every row fits, else int64 (a table past 2**31 rows)."""
    return narrowed(np.asarray(rows, dtype=np.int64))


def _compact_values(values: np.ndarray) -> np.ndarray:
    """float32 when that is exact (NaN and inf included; a float32 loss always is), else float64."""
    values = np.asarray(values)
    return narrowed(values if values.dtype.kind == "f" else values.astype(np.float64))


def _runs(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(run_steps, run_lengths)`` of a step array: one run where the step stays the same."""
    if not len(steps):
        return steps[:0], np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], steps[1:] != steps[:-1])))
    lengths = np.diff(np.append(starts, len(steps)))
    return steps[starts], lengths.astype(np.int64)


def _merge_same_dtype(parts: list[np.ndarray]) -> list[np.ndarray]:
    """Concatenate neighbouring chunks that share a dtype (never upcasts a chunk)."""
    out: list[np.ndarray] = []
    group: list[np.ndarray] = []
    for part in parts:
        if group and part.dtype != group[0].dtype:
            out.append(np.concatenate(group) if len(group) > 1 else group[0])
            group = []
        group.append(part)
    if group:
        out.append(np.concatenate(group) if len(group) > 1 else group[0])
    return out


def _expand(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=dtype)
    return np.concatenate([p.astype(dtype, copy=False) for p in parts]) if len(parts) > 1 \
        else parts[0].astype(dtype)  # a copy: callers never see (or mutate) the storage


def _gather(parts: list[np.ndarray], positions: np.ndarray, dtype: type) -> np.ndarray:
    """``concat(parts)[positions]`` as ``dtype`` without concatenating (positions sorted)."""
    out: np.ndarray = np.empty(len(positions), dtype=dtype)
    start = 0
    for part in parts:
        end = start + len(part)
        lo, hi = np.searchsorted(positions, [start, end])
        out[lo:hi] = part[positions[lo:hi] - start]
        start = end
    return out


@dataclass
class _Chunks:
    """One signal's history: row and value chunks, plus (step, code, length) runs."""

    rows: list[np.ndarray] = field(default_factory=list)  # int32 or int64 per chunk
    values: list[np.ndarray] = field(default_factory=list)  # float32 or float64 per chunk
    run_steps: list[np.ndarray] = field(default_factory=list)  # int64
    run_codes: list[np.ndarray] = field(default_factory=list)  # int32
    run_lengths: list[np.ndarray] = field(default_factory=list)  # int64
    loose: int = 0  # batches appended since the last merge

    @staticmethod
    def encode(rows: np.ndarray, step: int | np.ndarray, values: np.ndarray, code: int) -> _Chunks:
        """One batch in compact form (done outside the history lock: it is O(batch))."""
        if np.ndim(step) == 0:
            steps, lengths = np.asarray([step], dtype=np.int64), np.asarray([len(rows)], dtype=np.int64)
        else:
            steps, lengths = _runs(np.asarray(step, dtype=np.int64))
        keep = lengths > 0  # an empty batch adds no run
        return _Chunks([_compact_rows(rows)], [_compact_values(values)], [steps[keep]],
                       [np.full(int(keep.sum()), code, dtype=np.int32)], [lengths[keep]])

    def extend(self, batch: _Chunks) -> None:
        self.rows += batch.rows
        self.values += batch.values
        self.run_steps += batch.run_steps
        self.run_codes += batch.run_codes
        self.run_lengths += batch.run_lengths
        self.loose += len(batch.rows)
        if self.loose >= _MERGE_EVERY:
            self._merge_tail(self.loose)

    def _merge_tail(self, k: int) -> None:
        """Merge the last ``k`` batches into one piece: a million-sample epoch is a few hundred
        arrays, not thousands of 4 KB ones between which the allocator cannot give memory back."""
        tail = _Chunks(self.rows[-k:], self.values[-k:], self.run_steps[-k:], self.run_codes[-k:],
                       self.run_lengths[-k:])
        tail.consolidate()
        for name in ("rows", "values", "run_steps", "run_codes", "run_lengths"):
            setattr(self, name, getattr(self, name)[:-k] + getattr(tail, name))
        self.loose = 0

    def consolidate(self) -> None:
        """Merge chunks in place, keeping the compact dtypes; neighbouring equal runs become one."""
        self.loose = 0
        self.rows = _merge_same_dtype(self.rows)
        self.values = _merge_same_dtype(self.values)
        if len(self.run_steps) > 1:
            steps, codes = np.concatenate(self.run_steps), np.concatenate(self.run_codes)
            lengths = np.concatenate(self.run_lengths)
            if not len(steps):  # only empty batches: no run
                self.run_steps, self.run_codes, self.run_lengths = [steps], [codes], [lengths]
                return
            starts = np.flatnonzero(np.concatenate(([True], (steps[1:] != steps[:-1]) | (codes[1:] != codes[:-1]))))
            self.run_steps, self.run_codes = [steps[starts]], [codes[starts]]
            self.run_lengths = [np.add.reduceat(lengths, starts) if len(starts) else lengths]

    def snapshot(self) -> _Chunks:
        """A consolidated copy of the lists (the arrays are shared: appends never mutate them)."""
        self.consolidate()
        return _Chunks(list(self.rows), list(self.values), list(self.run_steps), list(self.run_codes),
                       list(self.run_lengths))

    def nbytes(self) -> int:
        return sum(a.nbytes for parts in (self.rows, self.values, self.run_steps, self.run_codes, self.run_lengths)
                   for a in parts)

    def expand(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(rows int64, steps int64, values float64, codes int32)``, fresh arrays."""
        lengths = _expand(self.run_lengths, np.int64)
        return (_expand(self.rows, np.int64), np.repeat(_expand(self.run_steps, np.int64), lengths),
                _expand(self.values, np.float64), np.repeat(_expand(self.run_codes, np.int32), lengths))

    def positions_of(self, row: int) -> np.ndarray:
        """Sorted positions whose row is ``row``."""
        found: list[np.ndarray] = []
        start = 0
        for part in self.rows:
            if part.dtype == np.int64 or fits_int32(row):
                found.append(np.flatnonzero(part == row) + start)
            start += len(part)
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def at(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(steps, values, codes)`` at sorted positions, mapped to runs without expanding them."""
        ends = np.cumsum(_expand(self.run_lengths, np.int64))
        run = np.searchsorted(ends, positions, side="right")
        return (_expand(self.run_steps, np.int64)[run], _gather(self.values, positions, np.float64),
                _expand(self.run_codes, np.int32)[run])


@dataclass
class CurvePoint:
    step: int
    value: float
    branch: str
    split: str
    seq: int  # monotonically increasing across all curves; a client's cursor


class SignalHistory:
    """Per-signal history ``(row, step, value, branch)`` and per-step mean curves."""

    def __init__(self, before_read: Callable[[], None] | None = None) -> None:
        self._before_read = before_read  # folds queued records in before any read
        self._lock = threading.Lock()
        self._history: dict[str, _Chunks] = {}
        self.branches: list[str] = []
        self._branch_code: dict[str, int] = {}
        self._curves: dict[str, list[CurvePoint]] = {}
        self._seq = 0
        self.markers: list[dict[str, object]] = []  # evaluation markers, notes

    def branch_code(self, branch: str) -> int:
        code = self._branch_code.get(branch)
        if code is None:
            code = len(self.branches)
            self.branches.append(branch)
            self._branch_code[branch] = code
        return code

    def code_of(self, branch: str) -> int | None:
        """The code of a known branch, ``None`` for a branch never recorded."""
        return self._branch_code.get(branch)

    def append(self, signal: str, rows: np.ndarray, step: int | np.ndarray, values: np.ndarray,
               branch: str) -> None:
        """One batch: ``step`` a scalar (a recorder batch) or one step per row (a restored history)."""
        batch = _Chunks.encode(rows, step, values, self.branch_code(branch))
        with self._lock:
            self._history.setdefault(signal, _Chunks()).extend(batch)

    def append_curve(self, signal: str, split: str, branch: str, step: int, value: float) -> CurvePoint:
        with self._lock:
            self._seq += 1
            point = CurvePoint(int(step), float(value), branch, split, self._seq)
            self._curves.setdefault(signal, []).append(point)
            return point

    def _sync(self) -> None:
        if self._before_read is not None:
            self._before_read()

    def signals(self) -> list[str]:
        self._sync()
        with self._lock:
            return sorted(set(self._history) | set(self._curves))

    def _snapshot(self, signal: str, sync: bool) -> _Chunks:
        if sync:
            self._sync()
        with self._lock:
            chunks = self._history.get(signal)
            return chunks.snapshot() if chunks is not None else _Chunks()

    def arrays(self, signal: str, *, sync: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, steps, values, branch_codes)`` of one signal (empty when unknown).

        Fresh ``int64, int64, float64, int32`` arrays expanded from the compact storage.
        """
        return self._snapshot(signal, sync).expand()  # expanded outside the lock: appends go on meanwhile

    def trajectory(self, signal: str, row: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        chunks = self._snapshot(signal, True)
        steps, values, codes = chunks.at(chunks.positions_of(int(row)))
        return steps, values, [self.branches[c] for c in codes.tolist()]

    def nbytes(self, signal: str | None = None) -> int:
        """Bytes the stored history arrays hold (one signal, or all)."""
        with self._lock:
            names = [signal] if signal is not None else list(self._history)
            return sum(self._history[s].nbytes() for s in names if s in self._history)

    def curve(self, signal: str, *, since_seq: int = 0, split: str | None = None,
              branch: str | None = None) -> list[CurvePoint]:
        self._sync()
        with self._lock:
            points = self._curves.get(signal, [])
            # Points are in seq order: binary search the cursor.
            lo, hi = 0, len(points)
            while lo < hi:
                mid = (lo + hi) // 2
                if points[mid].seq <= since_seq:
                    lo = mid + 1
                else:
                    hi = mid
            out = points[lo:]
        return [p for p in out if (split is None or p.split == split) and (branch is None or p.branch == branch)]

    def last_point(self, signal: str) -> CurvePoint | None:
        self._sync()
        with self._lock:
            points = self._curves.get(signal)
            return points[-1] if points else None

    @property
    def last_seq(self) -> int:
        return self._seq


class InstanceHistory:
    """Every per-instance value with its step and branch: ``wl.query_instance_history``.

    Appends are O(instances) list extensions (the training thread pays no per-row dict work);
    reads build arrays on demand.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cols: dict[str, list[object]] = {k: [] for k in ("signal", "split", "sample_id", "instance_id",
                                                               "step", "value", "branch")}

    def append(self, signal: str, split: str, sample_ids: list[str], instance_ids: list[str], step: int,
               values: list[float], branch: str) -> None:
        n = len(sample_ids)
        with self._lock:
            c = self._cols
            c["signal"].extend([signal] * n)
            c["split"].extend([split] * n)
            c["sample_id"].extend(sample_ids)
            c["instance_id"].extend(instance_ids)
            c["step"].extend([step] * n)
            c["value"].extend(values)
            c["branch"].extend([branch] * n)

    def rows(self, sample_id: str, instance_id: str | None = None, *, signal: str | None = None,
             branch: str | None = None) -> list[tuple[str, str, int, float, str]]:
        """``(signal, instance_id, step, value, branch)`` of one sample (optionally one instance)."""
        with self._lock:
            c = {k: list(v) for k, v in self._cols.items()}
        out = []
        for i, sid in enumerate(c["sample_id"]):
            if sid != sample_id or (instance_id is not None and c["instance_id"][i] != instance_id):
                continue
            if (signal is not None and c["signal"][i] != signal) or (branch is not None and c["branch"][i] != branch):
                continue
            out.append((str(c["signal"][i]), str(c["instance_id"][i]), int(c["step"][i]),  # type: ignore[call-overload]
                        float(c["value"][i]), str(c["branch"][i])))  # type: ignore[arg-type]
        return out

    def frame(self, sample_id: str, instance_id: str, *, signals: list[str] | None = None) -> object:
        import pandas as pd

        rows = [r for r in self.rows(sample_id, instance_id) if signals is None or r[0] in signals]
        return pd.DataFrame([{"signal": s, "sample_id": sample_id, "instance_id": a, "step": st, "value": v,
                              "branch": b} for s, a, st, v, b in rows],
                            columns=["signal", "sample_id", "instance_id", "step", "value", "branch"])
