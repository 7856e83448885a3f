"""Append-only per-sample signal history and per-step curves.

Appends are O(batch): arrays are kept in chunks and consolidated lazily on read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Chunks:
    rows: list[np.ndarray] = field(default_factory=list)
    steps: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    branches: list[np.ndarray] = field(default_factory=list)

    def consolidate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not self.rows:
            empty_i = np.zeros(0, dtype=np.int64)
            return empty_i, empty_i, np.zeros(0), np.zeros(0, dtype=np.int32)
        if len(self.rows) > 1:
            self.rows = [np.concatenate(self.rows)]
            self.steps = [np.concatenate(self.steps)]
            self.values = [np.concatenate(self.values)]
            self.branches = [np.concatenate(self.branches)]
        return self.rows[0], self.steps[0], self.values[0], self.branches[0]


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
        code = self.branch_code(branch)
        n = len(rows)
        steps = np.full(n, step, dtype=np.int64) if np.isscalar(step) else np.asarray(step, np.int64)
        with self._lock:
            chunks = self._history.setdefault(signal, _Chunks())
            chunks.rows.append(np.asarray(rows, dtype=np.int64))
            chunks.steps.append(steps)
            chunks.values.append(np.asarray(values, dtype=np.float64))
            chunks.branches.append(np.full(n, code, dtype=np.int32))

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

    def arrays(self, signal: str, *, sync: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, steps, values, branch_codes)`` of one signal (empty when unknown)."""
        if sync:
            self._sync()
        with self._lock:
            chunks = self._history.get(signal)
            if chunks is None:
                return _Chunks().consolidate()
            return chunks.consolidate()

    def trajectory(self, signal: str, row: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        rows, steps, values, codes = self.arrays(signal)
        mask = rows == row
        return steps[mask], values[mask], [self.branches[c] for c in codes[mask].tolist()]

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
