"""The sample-store interface and the in-memory default (weightslab-data-cache provides HDF5).

The experiment calls the ``append_*``/``update_rows`` methods on the training thread, so
implementations must only enqueue there and write in a background flusher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class StoreLockedError(RuntimeError):
    """The root log dir's sample store is open for writing in another process: one run per root log dir.

    A store plugin raises it (or a subclass) from ``weightslab_sample_store``; ``pid`` is the
    holder's process id when the plugin knows it.
    """

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


def root_dir_in_use(root_log_dir: Any, pid: int | None = None) -> str:
    """The one-line explanation of a locked store, with the fix."""
    holder = f" (process {pid})" if pid else ""
    return (f"root log dir {root_log_dir} is in use by another running WeightsLab process{holder}: two runs "
            "cannot share one root log dir. Stop the other run, or give this one its own folder: "
            "WEIGHTSLAB_ROOT_LOG_DIR=<dir> (or root_log_dir=<dir> in code, --root-log-dir <dir> for the demo)")


@dataclass
class StoredRows:
    """Sample-table rows as persisted: one entry per (split, sample_id)."""

    split: np.ndarray  # object (str); rows of one split may get a read-only view of one name
    sample_id: np.ndarray  # object (str), or int64 when every id is decimal (stored as its decimal form)
    label: np.ndarray  # float64 (NaN = none) or object
    discarded: np.ndarray  # bool
    tags: dict[str, np.ndarray] = field(default_factory=dict)  # name -> bool
    categories: dict[str, np.ndarray] = field(default_factory=dict)  # name -> object (None = unset)
    metadata: dict[str, np.ndarray] = field(default_factory=dict)  # name -> float64 or object


@dataclass
class StoredHistory:
    """Append-only per-sample history of one signal."""

    split: np.ndarray  # object
    sample_id: np.ndarray  # object
    step: np.ndarray  # int64
    value: np.ndarray  # float64
    branch: np.ndarray  # object


@dataclass
class StoredCurve:
    """Per-step mean of one signal in one split and branch."""

    step: np.ndarray  # int64
    value: np.ndarray  # float64


@dataclass
class StoredState:
    rows: StoredRows | None = None
    history: dict[str, StoredHistory] = field(default_factory=dict)  # signal -> history
    curves: dict[tuple[str, str, str], StoredCurve] = field(default_factory=dict)  # (signal, split, branch)
    predictions: dict[str, Any] = field(default_factory=dict)  # split -> {"sample_id", "step", "value"}


class SampleStore(Protocol):
    persistent: bool

    def load(self) -> StoredState:
        """Everything stored so far (empty state for a new store)."""
        ...

    def update_rows(self, rows: StoredRows) -> None:
        """Upsert these rows (by split + sample_id): tags, categories, discards, labels, metadata."""
        ...

    def append_history(self, signal: str, split: str, sample_ids: np.ndarray, steps: np.ndarray,
                       values: np.ndarray, branch: str) -> None:
        """``sample_ids`` (here and in ``append_predictions``): text ids (object array), or int64
        when every id of the batch is a decimal integer (the id ``7`` is the text ``"7"``).
        ``values``: float64, or float32 when the signal came as float32 (keep them as exact values)."""
        ...

    def append_curve(self, signal: str, split: str, branch: str, step: int, value: float) -> None: ...

    def append_predictions(self, split: str, sample_ids: np.ndarray, step: int,
                           predictions: np.ndarray) -> None: ...

    def flush(self) -> None:
        """Write everything queued so far; durable when it returns."""
        ...

    def close(self) -> None: ...


class MemorySampleStore:
    """Keeps nothing beyond what the experiment already holds in memory."""

    persistent = False

    def load(self) -> StoredState:
        return StoredState()

    def update_rows(self, rows: StoredRows) -> None:
        return None

    def append_history(self, signal: str, split: str, sample_ids: np.ndarray, steps: np.ndarray,
                       values: np.ndarray, branch: str) -> None:
        return None

    def append_curve(self, signal: str, split: str, branch: str, step: int, value: float) -> None:
        return None

    def append_predictions(self, split: str, sample_ids: np.ndarray, step: int,
                           predictions: np.ndarray) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
