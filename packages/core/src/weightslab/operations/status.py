"""Training status: state, step, branch, row counts, latest value of every curve.

The one computation is :meth:`Experiment.status`; this gives it a typed shape for front ends.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from weightslab.operations._base import lock_timeout


@dataclass(frozen=True)
class Status:
    name: str
    state: str  # running | paused | evaluating (and whatever activity states the core reports)
    step: int
    branch: str
    samples: int
    active: int
    discarded: int
    splits: dict[str, int]  # split -> rows
    signals: dict[str, float]  # latest curve value of each signal
    steps_per_second: float
    steps_left: int | None
    root_log_dir: str
    waiting: bool  # the loop is blocked at a step boundary right now
    seconds_since_last_step: float | None = None
    samples_seen: int = 0  # samples served to training so far (one per sample per batch)
    # embeddings-based scores (None unless a model is watched with embeddings=): computation state,
    # rows, exact/approximate, and train/val leakage (cross-split near-duplicate pairs)
    data_quality: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_FIELDS = frozenset(f.name for f in fields(Status))


def get_status(experiment: Any) -> Status:
    data = experiment.status(lock_timeout=lock_timeout(experiment))
    return Status(**{k: v for k, v in data.items() if k in _FIELDS})
