"""Batches the store cannot write, kept aside as readable JSON instead of blocking later writes.

A batch whose write fails for a reason other than the file system (``OSError``: disk full,
I/O error — retried) cannot succeed by retrying: e.g. a name with an embedded NUL, which an
HDF5 string cannot hold. It is written to ``<store>/quarantine/batch-<UTC time>-<n>.json``
(every queued value, with the error) and dropped from the queue, so later batches are written.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from weightslab_data_cache.pending import Pending

FOLDER = "quarantine"


def _plain(value: Any) -> Any:
    """JSON-safe copy: arrays as lists, non-finite floats as text, unknown objects as text."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def as_json(batch: Pending, error: BaseException) -> dict[str, Any]:
    return {
        "error": f"{type(error).__name__}: {error}",
        "values": batch.values,
        "history": {signal: [{"split": op.split, "branch": op.branch, "sample_ids": _plain(op.ids),
                              "steps": _plain(op.step_array()), "values": _plain(op.values)} for op in ops]
                    for signal, ops in batch.history.items()},
        "curves": [{"signal": c[0], "split": c[1], "branch": c[2], "step": c[3], "value": _plain(c[4])}
                   for c in batch.curves],
        "predictions": [{"split": op.split, "sample_ids": _plain(op.ids), "step": op.step,
                         "value": _plain(op.value)} for op in batch.predictions],
        "rows": [{"split": _plain(np.broadcast_to(op.split, op.ids.shape)), "sample_ids": _plain(op.ids),
                  "columns": [{"kind": key[0], "name": key[1], "values": _plain(col)}
                              for key, col in op.columns.items()]}
                 for op in batch.rows],
    }


def write(folder: Path, batch: Pending, error: BaseException) -> Path:
    """Write ``batch`` to a new file under ``folder/quarantine`` (durable when this returns)."""
    target = folder / FOLDER
    target.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    data = json.dumps(as_json(batch, error), ensure_ascii=True, indent=1).encode("ascii")
    for n in range(1000):
        path = target / f"batch-{stamp}-{n}.json"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return path
    raise FileExistsError(f"{target}: no free quarantine file name for {stamp}")
