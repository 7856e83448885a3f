"""Curve downsampling: the one implementation (gRPC, CLI, SDK and data_cache use it).

* :func:`extreme_indices`: at most ``max_points`` points keeping both endpoints, the global
  minimum and maximum and each bucket's minimum and maximum (curves: spikes never vanish);
* :func:`uniform_indices`: evenly spaced points, first and last kept (break-by-slices means
  and trajectories: every returned point is a real value, no interpolation);
* :func:`mean_by_step`: the mean of the finite values at each step.
"""

from __future__ import annotations

import numpy as np

MIN_EXTREME_POINTS = 4  # both endpoints and both extremes


def uniform_indices(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spaced points of ``range(n)``, first and last
    included; ``0`` = no cap, ``1`` keeps the last point only."""
    if max_points <= 0 or n <= max_points:
        return np.arange(n, dtype=np.int64)
    if max_points == 1:
        return np.asarray([n - 1], dtype=np.int64)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.int64))


def extreme_indices(values: np.ndarray, max_points: int) -> np.ndarray:
    """Sorted indices of at most ``max_points`` points (0 = no cap; caps below 4 count as 4)
    keeping the endpoints, the global min/max and the min/max of equal interior buckets."""
    ys = np.asarray(values, dtype=np.float64)
    n = ys.shape[0]
    if max_points <= 0 or n <= max_points:
        return np.arange(n, dtype=np.int64)
    max_points = max(max_points, MIN_EXTREME_POINTS)
    finite = np.isfinite(ys)
    keep = [0, n - 1]
    if finite.any():
        keep += [int(np.nanargmin(np.where(finite, ys, np.nan))), int(np.nanargmax(np.where(finite, ys, np.nan)))]
    must = np.unique(np.asarray(keep, dtype=np.int64))
    buckets = (max_points - len(must)) // 2
    picks: list[np.ndarray] = [must]
    if buckets > 0 and n > 2:
        interior = ys[1 : n - 1]
        size = -(-interior.shape[0] // buckets)
        pad = size * (-(-interior.shape[0] // size)) - interior.shape[0]
        lo_v = np.concatenate([np.where(np.isfinite(interior), interior, np.inf), np.full(pad, np.inf)])
        hi_v = np.concatenate([np.where(np.isfinite(interior), interior, -np.inf), np.full(pad, -np.inf)])
        lo_v, hi_v = lo_v.reshape(-1, size), hi_v.reshape(-1, size)
        base = np.arange(lo_v.shape[0]) * size + 1
        amin, amax = lo_v.argmin(axis=1), hi_v.argmax(axis=1)
        rows = np.arange(lo_v.shape[0])
        picks += [(base + amin)[np.isfinite(lo_v[rows, amin])], (base + amax)[np.isfinite(hi_v[rows, amax])]]
    idx = np.unique(np.concatenate(picks).astype(np.int64))
    if idx.shape[0] > max_points:  # bucket picks rarely coincide with the extremes: thin them evenly
        rest = np.setdiff1d(idx, must)
        room = max_points - must.shape[0]
        rest = rest[uniform_indices(rest.shape[0], room)] if room > 0 else rest[:0]
        idx = np.union1d(must, rest)
    return idx


def mean_by_step(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted unique steps, mean of the finite values at each step)``; steps with none dropped."""
    steps = np.asarray(steps, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    steps, values = steps[ok], values[ok]
    uniq, inverse = np.unique(steps, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=uniq.shape[0])
    counts = np.bincount(inverse, minlength=uniq.shape[0])
    return uniq, sums / np.maximum(counts, 1)
