"""In-memory content of one segment (one flush, or one compaction of several segments).

Everything is already encoded: sample ids and names are integer codes into the store's
append-only dictionaries; a segment carries the dictionary entries it introduced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from weightslab_data_cache.rows import RowPatch


@dataclass
class HistoryBlock:
    """Rows of one signal in append order; ``runs`` says which split/branch each row has."""

    sid: np.ndarray  # int64 sample-id codes
    step: np.ndarray  # int64
    value: np.ndarray  # float64
    runs: np.ndarray  # (k, 3) int64: first row, split code, branch code

    def __len__(self) -> int:
        return int(self.sid.shape[0])


@dataclass
class CurveBlock:
    key: np.ndarray  # (n, 3) int64: signal, split, branch codes
    step: np.ndarray  # int64
    value: np.ndarray  # float64


@dataclass(frozen=True)
class PredSignature:
    """Predictions of one split with the same storage: ``enc`` raw|str|json, dtype and row shape."""

    split: int
    enc: str
    dtype: str
    shape: tuple[int, ...]


@dataclass
class PredBlock:
    signature: PredSignature
    sid: np.ndarray  # int64 codes
    step: np.ndarray  # int64
    value: np.ndarray  # (n, *shape) raw dtype, or object (str / JSON text)


@dataclass
class SegmentData:
    names_base: int = 0
    names: Sequence[str] = field(default_factory=list)
    ids_base: int = 0
    ids: Sequence[str] = field(default_factory=list)
    history: dict[int, HistoryBlock] = field(default_factory=dict)  # signal code -> rows
    curves: CurveBlock | None = None
    predictions: list[PredBlock] = field(default_factory=list)
    rows: RowPatch | None = None

    def is_empty(self) -> bool:
        return not (self.names or self.ids or self.history or self.curves is not None
                    or self.predictions or self.rows is not None)


def merge_runs(runs: np.ndarray) -> np.ndarray:
    """Drop runs that repeat the split/branch of the run before them."""
    if runs.shape[0] < 2:
        return runs
    keep = np.ones(runs.shape[0], dtype=bool)
    keep[1:] = np.any(runs[1:, 1:] != runs[:-1, 1:], axis=1)
    return runs[keep]
