"""Helpers of the core tests: polling with a deadline and a small real data set."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.005) -> None:
    """Poll with a deadline (never a bare sleep as synchronisation)."""
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout:.1f}s")
        tick.wait(interval)


def noisy_digits(n: int | None = None, noise: float = 0.1, seed: int = 0):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images[:, None] / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    if n is not None:
        x, y = x[:n], y[:n]
    rng = np.random.default_rng(seed)
    noisy = rng.random(len(y)) < noise
    y_noisy = y.copy()
    y_noisy[noisy] = (y[noisy] + rng.integers(1, 10, noisy.sum())) % 10
    return x, y, y_noisy, noisy


# -- embeddings: digits with injected problems (tests and benchmarks/embeddings_bench.py) --------------
def lenet() -> Any:
    import torch

    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def injected_digits(seed: int = 0) -> tuple[Any, Any]:
    """3% corrupted inputs (uniform noise, blank, inverted) and 2% near-duplicates (copies with small
    noise), half of the copies in the other split than their source (train/val leakage).

    ``(train, val)``, each ``(x, y, corrupted, dup_of)``; ``dup_of[i]`` = (split, index) of the
    sample row i copies, or None."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images[:, None] / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    n = len(y)
    corrupted = np.zeros(n, dtype=bool)
    bad = rng.choice(n, int(0.03 * n), replace=False)
    corrupted[bad] = True
    for j, i in enumerate(bad):
        x[i] = (rng.random(x[i].shape), np.zeros_like(x[i]), 1.0 - x[i])[j % 3]
    in_val = rng.random(n) < 0.2
    sources = rng.choice(np.flatnonzero(~corrupted), int(0.02 * n), replace=False)
    copies = np.clip(x[sources] + rng.normal(0, 0.03, x[sources].shape), 0, 1).astype(np.float32)
    # half the copies land in the other split than their source: train/val leakage
    copy_in_val = np.where(np.arange(len(sources)) % 2 == 0, ~in_val[sources], in_val[sources])
    parts = {}
    for split, mask, cmask in (("train", ~in_val, ~copy_in_val), ("val", in_val, copy_in_val)):
        idx = np.flatnonzero(mask)
        parts[split] = [np.concatenate([x[idx], copies[cmask]]), np.concatenate([y[idx], y[sources[cmask]]]),
                        np.concatenate([corrupted[idx], np.zeros(cmask.sum(), bool)]), idx, sources[cmask]]
    position = {}  # original index -> (split, position in that split)
    for split, p in parts.items():
        position.update({int(orig): (split, k) for k, orig in enumerate(p[3])})
    out = {}
    for split, (xs, ys, cor, idx, srcs) in parts.items():
        dup_of = [None] * len(idx) + [position[int(s)] for s in srcs]
        out[split] = (xs, ys, cor, dup_of)
    return out["train"], out["val"]
