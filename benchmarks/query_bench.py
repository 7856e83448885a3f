"""Query engine on a 1M-row x 20-column sample table (numpy, CPU).

Targets: filter + sort + page 128 < 100 ms (stretch < 30 ms); group-by-label aggregate and
a 512-bin value histogram interactive (well under a second). Timings are medians of N
warm runs (the frame's cached keys -- split codes, sample-id ranks -- are built once and
reported separately as ``cold_*``). The baseline is a plain ``numpy.argsort`` of one column
in the same run, so ratios stay comparable on a shared, noisy machine.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

ROWS = 1_000_000
RUNS = 15


def _frame(n: int = ROWS) -> Any:
    from weightslab.query import Frame

    rng = np.random.default_rng(0)
    loss = rng.exponential(1.0, n)
    loss[rng.random(n) < 0.01] = np.nan
    columns: dict[str, np.ndarray] = {
        "label": rng.integers(0, 10, n).astype(np.float64),
        "prediction": rng.integers(0, 10, n).astype(np.float64),
        "loss": loss,
        "margin": rng.normal(size=n),
        "suspected_mislabel": rng.random(n),
        "last_seen_step": rng.integers(0, 10_000, n).astype(np.float64),
        "seen_count": rng.integers(0, 50, n).astype(np.float64),
    }
    for i in range(12):
        columns[f"signal_{i}"] = rng.random(n)
    columns["name"] = np.array([f"img_{i:07d}.png" for i in range(n)], dtype=object)
    assert len(columns) == 20
    quality = np.full(n, None, dtype=object)
    quality[rng.random(n) < 0.05] = "blurry"
    return Frame(
        sample_id=np.array([str(i) for i in range(n)], dtype=object),
        split=np.array(["train", "val", "test"], dtype=object)[rng.choice(3, n, p=[0.8, 0.1, 0.1])],
        discarded=rng.random(n) < 0.02,
        columns=columns,
        tags={"noisy": rng.random(n) < 0.1, "reviewed": rng.random(n) < 0.01},
        categories={"quality": quality},
    )


def _time(fn: Callable[[], Any], runs: int = RUNS) -> dict[str, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2),
            "max_ms": round(max(times), 2), "runs": runs}


def _once(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return round((time.perf_counter() - t0) * 1000, 2)


def run(rows: int = ROWS, runs: int = RUNS) -> dict[str, Any]:
    from weightslab.query import (
        histogram_by_position,
        histogram_by_value,
        ordered_indices,
        parse_query,
        run_query,
    )

    t0 = time.perf_counter()
    frame = _frame(rows)
    build_s = time.perf_counter() - t0
    loss = frame.columns["loss"]

    cold = {
        "split_codes_ms": _once(frame.split_codes),
        "sample_id_rank_ms": _once(frame.id_rank),
    }
    baseline = _time(lambda: np.argsort(loss), runs)

    page_query = parse_query('loss > 0.5 and split == "train" and not discarded sort by loss desc limit 128')
    result = run_query(frame, page_query)
    assert len(result.indices) == 128 and result.total > 128
    cases: dict[str, tuple[Any, ...]] = {
        "filter_sort_page128": (run_query, frame, page_query),
        "sort_by_sample_id_page128": (run_query, frame, parse_query("sort by sample_id desc limit 128")),
        "multi_key_sort_page128": (run_query, frame, parse_query("has:noisy sort by label, loss desc limit 128")),
        "deep_page_offset_100k": (run_query, frame, parse_query("sort by margin limit 128 offset 100000")),
        "top_k_20": (run_query, frame, parse_query("not discarded top 20 by suspected_mislabel")),
        "group_by_label": (run_query, frame,
                           parse_query("group by label: count, mean(loss), max(loss), quantile(loss, 0.9)")),
        "group_by_split_label_mean": (run_query, frame, parse_query("group by split, label: count, mean(loss)")),
        "histogram_value_512": (histogram_by_value, frame, "loss", 512),
        "histogram_value_512_filtered": (histogram_by_value, frame, "loss", 512, 'split == "train"'),
    }
    timings = {name: _time(lambda f=fn, a=args: f(*a), runs) for name, (fn, *args) in cases.items()}
    order = ordered_indices(frame, parse_query('split == "train" sort by loss'))
    timings["ordered_indices_train_by_loss"] = _time(
        lambda: ordered_indices(frame, parse_query('split == "train" sort by loss')), max(3, runs // 3))
    timings["histogram_position_512"] = _time(lambda: histogram_by_position(frame, order, 512), runs)

    base = baseline["median_ms"]
    headline = timings["filter_sort_page128"]["median_ms"]
    return {
        "rows": rows,
        "columns": len(frame.columns),
        "frame_build_s": round(build_s, 2),
        "baseline_numpy_argsort_1_column": baseline,
        "cold": cold,
        "timings": timings,
        "ratios_to_baseline": {k: round(v["median_ms"] / base, 3) for k, v in timings.items()},
        "targets": {
            "filter_sort_page128_ms": 100,
            "filter_sort_page128_stretch_ms": 30,
            "filter_sort_page128_met": headline < 100,
            "filter_sort_page128_stretch_met": headline < 30,
        },
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
