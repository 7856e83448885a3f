"""Helpers of the core tests: polling with a deadline and a small real data set."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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
