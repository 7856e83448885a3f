"""MislabelTracker cost (per-batch update, columns on 1M rows) and, optionally, score quality.

``run()`` (used by ``benchmarks/run.py``) times ``update`` for batches of 64/256/1024 samples
with 10 and 100 classes on a tracker already holding 1M rows, and ``columns(1_000_000)``.
Baselines measured in the same run, so ratios stay comparable on a shared machine: a numpy
log-softmax of the same logits (the least any per-batch consumer of logits does) for
``update``, and ``numpy.argsort`` of one 1M column (as in query_bench) for ``columns``.

``python benchmarks/mislabel_bench.py --sweep 8`` also trains the noisy-digits MLP of the
test suite for several seeds (needs torch and scikit-learn) and prints, per seed, the worst
per-epoch AUROC gap between ``suspected_mislabel`` and the raw latest loss and the final AUROCs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

ROWS = 1_000_000
RUNS = 30


def _time(fn: Callable[[], Any], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def run() -> dict[str, Any]:
    from weightslab.mislabel import MislabelTracker

    rng = np.random.default_rng(0)
    tracker = MislabelTracker()
    for start in range(0, ROWS, 10_000):  # fill 1M rows (geometric growth on the way)
        rows = np.arange(start, start + 10_000)
        tracker.update(rows, rng.exponential(1.0, rows.size), logits=rng.normal(size=(rows.size, 10)).astype(np.float32),
                       targets=rng.integers(0, 10, rows.size))
    result: dict[str, Any] = {"rows": ROWS, "capacity": tracker.capacity}
    for classes in (10, 100):
        for batch in (64, 256, 1024):
            rows = rng.choice(ROWS, batch, replace=False)
            losses = rng.exponential(1.0, batch).astype(np.float32)
            logits = rng.normal(size=(batch, classes)).astype(np.float32)
            targets = rng.integers(0, classes, batch)

            def upd(rows: np.ndarray = rows, losses: np.ndarray = losses, logits: np.ndarray = logits,
                    targets: np.ndarray = targets) -> None:
                tracker.update(rows, losses, logits=logits, targets=targets, step=1)

            t = _time(upd)
            def base_fn(logits: np.ndarray = logits) -> None:
                _log_softmax(logits.astype(np.float64))

            base = _time(base_fn)
            result[f"update_b{batch}_c{classes}_ms"] = round(t, 4)
            result[f"update_b{batch}_c{classes}_ratio_vs_logsoftmax"] = round(t / base, 2)
    rows = rng.integers(0, ROWS, 256)
    rows[:8] = rows[0]  # a batch that repeats a row (sampling with replacement)
    result["update_b256_c10_repeated_rows_ms"] = round(_time(
        lambda: tracker.update(rows, np.ones(256), logits=np.zeros((256, 10)), targets=np.zeros(256, int))), 4)
    t_cols = _time(lambda: tracker.columns(ROWS), runs=5)
    col = rng.random(ROWS)
    t_sort = _time(lambda: np.argsort(col), runs=5)
    result["columns_1M_ms"] = round(t_cols, 2)
    result["columns_1M_ratio_vs_argsort"] = round(t_cols / t_sort, 2)
    return result


def sweep(seeds: int, epochs: int = 30, noise: float = 0.2) -> list[dict[str, Any]]:
    import torch
    from sklearn.datasets import load_digits
    from sklearn.metrics import roc_auc_score
    from weightslab.mislabel import MislabelTracker

    torch.set_num_threads(1)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    n = len(y)
    out = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        noisy = rng.random(n) < noise
        y_noisy = y.copy()
        y_noisy[noisy] = (y[noisy] + rng.integers(1, 10, noisy.sum())) % 10
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                    torch.nn.ReLU(), torch.nn.Linear(256, 10))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y_noisy)
        gen = torch.Generator().manual_seed(seed)
        tracker = MislabelTracker()
        gaps, score, raw, aum = [], 0.0, 0.0, 0.0
        for _ in range(epochs):
            for idx in torch.randperm(n, generator=gen).split(64):
                logits = model(xt[idx])
                losses = torch.nn.functional.cross_entropy(logits, yt[idx], reduction="none")
                opt.zero_grad()
                losses.mean().backward()
                opt.step()
                tracker.update(idx.numpy(), losses.detach().numpy(), logits=logits.detach().numpy(),
                               targets=y_noisy[idx.numpy()])
            cols = tracker.columns(n)
            score = roc_auc_score(noisy, cols["suspected_mislabel"])
            raw = roc_auc_score(noisy, cols["loss_last"])
            aum = roc_auc_score(noisy, -cols["aum"])
            gaps.append(score - raw)
        worst = int(np.argmin(gaps))
        row = {"seed": seed, "worst_gap": round(gaps[worst], 6), "worst_epoch": worst + 1,
               "final_score": round(score, 4), "final_raw_loss": round(raw, 4), "final_neg_aum": round(aum, 4)}
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", type=int, default=0, help="also run the noisy-digits quality sweep on N seeds")
    args = parser.parse_args()
    print(json.dumps(run(), indent=2))
    if args.sweep:
        sweep(args.sweep)
