"""The sample-store interface and the in-memory default (data_cache provides HDF5)."""

from __future__ import annotations

from typing import Any, Protocol


class SampleStore(Protocol):
    """Persistence of the sample table and history; called off the training hot path."""

    def load(self, experiment: Any) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class MemorySampleStore:
    """Keeps nothing beyond what the experiment already holds in memory."""

    persistent = False

    def load(self, experiment: Any) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
