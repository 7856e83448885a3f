"""Writer process for the kill -9 test (also imported by the test for the expected data).

The ideal op sequence is, for batch b = 0, 1, 2, ...: history(b), curve(b), predictions(b),
rows(b). The writer reopens the store, completes a batch a previous run left half-written,
then appends batches as fast as it can, flushing every FLUSH_EVERY batches and printing
``FLUSHED <batches>`` once each flush returned.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

B = 40  # samples per batch
N = 997  # distinct sample ids
FLUSH_EVERY = 3
OPS = ("history", "curve", "predictions", "rows")


def ids(b: int) -> np.ndarray:
    return (b * 13 + np.arange(B)) % N


def values(b: int) -> np.ndarray:
    return b + np.arange(B) / 1000.0


def preds(b: int) -> np.ndarray:
    return (np.arange(B * 3, dtype=np.float32).reshape(B, 3) + b).astype(np.float32)


def rows(b: int):  # noqa: ANN201 - StoredRows
    from weightslab.store import StoredRows

    return StoredRows(
        split=np.full(B, "train", dtype=object), sample_id=ids(b), label=np.full(B, float(b)),
        discarded=np.full(B, b % 5 == 0), tags={"even": np.full(B, b % 2 == 0)},
        categories={"mod3": np.full(B, str(b % 3), dtype=object)}, metadata={"half": np.full(B, b * 0.5)},
    )


def apply(store, b: int, op: str) -> None:  # noqa: ANN001
    if op == "history":
        store.append_history("loss", "train", ids(b), np.full(B, b), values(b), "main")
    elif op == "curve":
        store.append_curve("loss", "train", "main", b, float(values(b).mean()))
    elif op == "predictions":
        store.append_predictions("train", ids(b), b, preds(b))
    else:
        store.update_rows(rows(b))


def counts(state) -> dict[str, int]:  # noqa: ANN001
    """Batches present per op kind (rows: the highest batch label + 1)."""
    hist = state.history.get("loss")
    curve = state.curves.get(("loss", "train", "main"))
    pred = state.predictions.get("train")
    return {
        "history": 0 if hist is None else len(hist.step) // B,
        "curve": 0 if curve is None else len(curve.step),
        "predictions": 0 if pred is None else len(pred["step"]) // B,
        "rows": 0 if state.rows is None else int(np.nanmax(state.rows.label)) + 1,
    }


def _say(line: str) -> None:
    """One line in one write (atomic on a pipe): a SIGKILL never leaves half of it."""
    os.write(sys.stdout.fileno(), (line + "\n").encode())


def main(path: str) -> None:
    from weightslab_data_cache.h5store import H5SampleStore

    store = H5SampleStore(path, flush_interval=0.01, compact_fanout=3, chunk_size=16)
    done = counts(store.load())
    start = done["history"]
    if start:  # finish the batch a killed run left half-written, in op order
        for op in OPS[1:]:
            if done[op] < start:
                apply(store, start - 1, op)
    _say(f"READY {start}")
    b = start
    while True:
        for op in OPS:
            apply(store, b, op)
        b += 1
        time.sleep(0.005)  # a training step: leaves the background threads some room
        if b % FLUSH_EVERY == 0:
            store.flush()
            _say(f"FLUSHED {b}")


if __name__ == "__main__":
    main(sys.argv[1])
