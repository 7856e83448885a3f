"""Embedding-based data quality: the computation's state and the train/val leakage pairs.

The columns themselves (``outlier_score``, ``uniqueness``, ``near_duplicate_of``,
``near_duplicate_split``, ``duplicate_group``) are ordinary query columns (``operations.samples``);
this reads what a column cannot say: whether the scores are computed, exact or approximate,
and every cross-split near-duplicate pair. ``refresh`` asks for a computation now.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from weightslab.operations._base import InvalidRequest, Unavailable

MAX_WAIT_SECONDS = 600.0


@dataclass(frozen=True)
class LeakagePair:
    """Two near-duplicate samples in different splits."""

    split_a: str
    sample_id_a: str
    split_b: str
    sample_id_b: str


@dataclass(frozen=True)
class DataQualityRequest:
    refresh: bool = False  # compute now (in the background thread)
    wait_seconds: float = 0.0  # with refresh: wait up to this long for that computation
    max_pairs: int = 1000  # leakage pairs returned (the count is always complete)


@dataclass(frozen=True)
class DataQuality:
    status: dict[str, Any]  # state (waiting|computing|ready|failed), rows, exact, threshold, seconds, ...
    leakage_pairs: int  # cross-split near-duplicate pairs in the last computation
    leakage: tuple[LeakagePair, ...]  # the first ``max_pairs`` of them
    completed: bool  # False when a refresh was waited for and did not finish in time

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "leakage_pairs": self.leakage_pairs, "completed": self.completed,
                "leakage": [vars(p) for p in self.leakage]}


def get_data_quality(experiment: Any, request: DataQualityRequest | None = None) -> DataQuality:
    from weightslab.embeddings import cross_split_pairs

    request = request or DataQualityRequest()
    wait = request.wait_seconds
    if not isinstance(wait, (int, float)) or not math.isfinite(wait) or not 0 <= wait <= MAX_WAIT_SECONDS:
        raise InvalidRequest.of("wait_seconds", wait, f"expected 0..{MAX_WAIT_SECONDS:g} seconds")
    if not isinstance(request.max_pairs, int) or not 0 <= request.max_pairs <= 100_000:
        raise InvalidRequest.of("max_pairs", request.max_pairs, "expected 0..100000")
    index = getattr(experiment, "embeddings", None)
    if index is None:
        raise Unavailable("no embeddings: watch the model with wl.watch_or_edit(model, flag='model', "
                          "embeddings=True) (or embeddings='<module name>')")
    completed = True
    if request.refresh:
        completed = index.refresh(wait=wait > 0, timeout=wait)
    pairs = cross_split_pairs(index)
    return DataQuality(
        status=index.status(), leakage_pairs=len(pairs), completed=completed,
        leakage=tuple(LeakagePair(a[0], a[1], b[0], b[1]) for a, b in pairs[: request.max_pairs]))
