"""weightslab-data-cache: HDF5 ingest and reload, thumbnail throughput.

Targets: sustained background ingest >= 1M values/s (enqueue + write + commit, the caller
only enqueues); reload of 1M samples x 50 steps of history; thumbnails of 256x256 images
>= 300/s cold (render + encode) and >= 5000/s warm (cache hits).
The reload data set is scaled down (and says so) when writing it would take over 60 s.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _ingest(folder: Path, seconds: float = 4.0, batch: int = 8192, samples: int = 1_000_000) -> dict[str, Any]:
    from weightslab_data_cache.h5store import H5SampleStore

    rng = np.random.default_rng(0)
    values = rng.random(batch)
    enqueue_times = []
    with H5SampleStore(folder, flush_interval=1.0) as store:
        started = time.perf_counter()
        n = 0
        step = 0
        while time.perf_counter() - started < seconds:
            ids = (np.arange(batch) + step * batch) % samples
            t0 = time.perf_counter()
            store.append_history("loss", "train", ids, np.full(batch, step), values, "main")
            enqueue_times.append(time.perf_counter() - t0)
            n += batch
            step += 1
        store.flush()  # everything durable: the rate counts the background writes too
        elapsed = time.perf_counter() - started
        segments = len(store.segment_files())
    return {
        "values": n, "seconds": round(elapsed, 3), "values_per_s": round(n / elapsed),
        "target_values_per_s": 1_000_000, "batch": batch,
        "caller_enqueue_us_per_batch_median": round(float(np.median(enqueue_times)) * 1e6, 1),
        "segments_after": segments,
    }


def _reload(folder: Path, samples: int = 1_000_000, steps: int = 50, write_budget_s: float = 60.0) -> dict[str, Any]:
    from weightslab_data_cache.h5store import H5SampleStore

    ids = np.arange(samples)
    values = np.random.default_rng(1).random(samples)
    written_steps = 0
    t0 = time.perf_counter()
    with H5SampleStore(folder, flush_interval=1.0) as store:
        for step in range(steps):
            store.append_history("loss", "train", ids, np.full(samples, step), values, "main")
            written_steps += 1
            if step == 4:  # projected time too long: scale down
                projected = (time.perf_counter() - t0) / 5 * steps
                if projected > write_budget_s:
                    steps = max(5, int(steps * write_budget_s / projected))
            if written_steps >= steps:
                break
    write_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    with H5SampleStore(folder) as store:
        state = store.load()
    load_s = time.perf_counter() - t1
    rows = len(state.history["loss"].step)
    assert rows == samples * written_steps
    return {
        "samples": samples, "steps": written_steps, "history_rows": rows,
        "scaled_down": written_steps < 50, "write_s": round(write_s, 2), "reload_s": round(load_s, 2),
        "reload_rows_per_s": round(rows / load_s),
    }


def _thumbnails(n: int = 600, size: int = 720) -> dict[str, Any]:
    from weightslab_data_cache.preview_cache import PreviewCache
    from weightslab_data_cache.previews import render_preview

    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:256, 0:256]
    base = np.stack([xx, yy, (xx + yy) // 2], axis=-1).astype(np.float32)
    images = [np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8) for _ in range(16)]
    cache = PreviewCache(max_entries=n, warmup_wait_ms=0)
    t0 = time.perf_counter()
    for i in range(n):
        cache.get(i, lambda i=i: render_preview(images[i % 16], size))
    cold = n / (time.perf_counter() - t0)
    t1 = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        for i in range(n):
            cache.get(i, lambda: (b"", ""))
    warm = n * rounds / (time.perf_counter() - t1)
    t2 = time.perf_counter()
    for i in range(n // 3):
        render_preview(images[i % 16], 128)
    cold_128 = (n // 3) / (time.perf_counter() - t2)
    return {"image": "256x256 RGB uint8", "thumbnail_size": size,
            "cold_per_s": round(cold), "warm_per_s": round(warm), "cold_downscaled_to_128_per_s": round(cold_128),
            "target_cold_per_s": 300, "target_warm_per_s": 5000}


def run() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="wl-data-cache-bench-"))
    try:
        return {
            "ingest": _ingest(tmp / "ingest"),
            "ingest_batch_256": _ingest(tmp / "ingest256", seconds=2.0, batch=256),
            "reload": _reload(tmp / "reload"),
            "thumbnails": _thumbnails(),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
