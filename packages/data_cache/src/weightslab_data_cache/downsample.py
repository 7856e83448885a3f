"""Curve reduction for the UI.

* ``uniform_indices`` / ``break_by_slices``: the break-by-slices plot. One mean curve per
  branch over the selected samples (mean across them at each step), capped to
  ``max_points`` (``WL_MAX_POINTS_PER_SAMPLE``) by evenly spaced indices that keep the
  first and last points. No interpolation: every returned point is a real mean.
* ``downsample_curve``: min/max per bucket, keeping both endpoints and the global minimum
  and maximum, optionally within an x-range.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from weightslab_data_cache.codec import id_text


def uniform_indices(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spaced points of ``n``, first and last included.

    ``max_points == 0`` means no cap; ``1`` keeps the last point only.
    """
    if max_points <= 0 or n <= max_points:
        return np.arange(n)
    if max_points == 1:
        return np.array([n - 1])
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.int64))


def mean_by_step(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique steps, mean of the finite values at each step); steps with none dropped."""
    steps = np.asarray(steps, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    steps, values = steps[ok], values[ok]
    uniq, inverse = np.unique(steps, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=uniq.shape[0])
    counts = np.bincount(inverse, minlength=uniq.shape[0])
    return uniq, sums / counts


def _as_text(ids: Any) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.dtype.kind == "U":
        return arr
    return np.array([id_text(v) for v in arr.tolist()], dtype=str)


def break_by_slices(sample_ids: Any, steps: Any, values: Any, branches: Any, selected_ids: Iterable[Any],
                    max_points: int = 200) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per branch: (steps, mean value across the selected samples at each step), capped.

    ``sample_ids``, ``steps``, ``values``, ``branches`` are parallel history arrays (e.g. a
    ``StoredHistory`` of one signal and split); ``selected_ids`` are the samples having
    every chosen tag. Ids compare by text (``7`` == ``"7"``). A scalar ``branches`` applies
    to every row.
    """
    ids = _as_text(sample_ids)
    steps_a = np.asarray(steps, dtype=np.int64)
    values_a = np.asarray(values, dtype=np.float64)
    branch_a = np.asarray(branches, dtype=object)
    if branch_a.ndim == 0:
        branch_a = np.full(ids.shape[0], branch_a.item(), dtype=object)
    if not (ids.shape[0] == steps_a.shape[0] == values_a.shape[0] == branch_a.shape[0]):
        raise ValueError("sample_ids, steps, values and branches must have the same length")
    selected = _as_text(list(selected_ids))
    if selected.size == 0 or ids.size == 0:
        return {}
    hit = np.isin(ids, selected)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    branch_hit = branch_a[hit]
    for branch in dict.fromkeys(branch_hit.tolist()):
        rows = np.flatnonzero(hit)[branch_hit == branch]
        xs, ys = mean_by_step(steps_a[rows], values_a[rows])
        if xs.size == 0:
            continue
        keep = uniform_indices(xs.shape[0], max_points)
        out[str(branch)] = (xs[keep], ys[keep])
    return out


def downsample_curve(steps: Any, values: Any, max_points: int,
                     x_range: tuple[float | None, float | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points (0 = no cap) keeping endpoints and global min/max.

    Points are kept in their original order; the interior is split into equal buckets and
    each keeps its minimum and maximum. Caps below 4 are raised to 4, the smallest that
    can hold both endpoints and both extremes. ``x_range = (lo, hi)`` (inclusive, either
    may be None) selects the part of the curve first.
    """
    xs = np.asarray(steps)
    ys = np.asarray(values, dtype=np.float64)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError("steps and values must be 1-D arrays of the same length")
    if x_range is not None:
        lo, hi = x_range
        sel = np.ones(xs.shape[0], dtype=bool)
        if lo is not None:
            sel &= xs >= lo
        if hi is not None:
            sel &= xs <= hi
        xs, ys = xs[sel], ys[sel]
    n = xs.shape[0]
    if max_points <= 0 or n <= max_points:
        return xs, ys
    max_points = max(max_points, 4)
    finite = np.isfinite(ys)
    keep = [0, n - 1]
    if finite.any():
        keep += [int(np.nanargmin(np.where(finite, ys, np.nan))), int(np.nanargmax(np.where(finite, ys, np.nan)))]
    budget = max_points - len(set(keep))
    buckets = budget // 2
    if buckets > 0 and n > 2:
        interior = ys[1:n - 1]
        size = -(-interior.shape[0] // buckets)
        pad = size * (-(-interior.shape[0] // size)) - interior.shape[0]
        lo_v = np.concatenate([np.where(np.isfinite(interior), interior, np.inf), np.full(pad, np.inf)])
        hi_v = np.concatenate([np.where(np.isfinite(interior), interior, -np.inf), np.full(pad, -np.inf)])
        lo_v, hi_v = lo_v.reshape(-1, size), hi_v.reshape(-1, size)
        base = np.arange(lo_v.shape[0]) * size + 1
        amin, amax = lo_v.argmin(axis=1), hi_v.argmax(axis=1)
        ok_min = np.isfinite(lo_v[np.arange(lo_v.shape[0]), amin])
        ok_max = np.isfinite(hi_v[np.arange(hi_v.shape[0]), amax])
        keep += (base + amin)[ok_min].tolist() + (base + amax)[ok_max].tolist()
    idx = np.unique(np.asarray(keep, dtype=np.int64))
    if idx.shape[0] > max_points:  # extremes coincide with bucket picks less often than budgeted
        must = np.unique(np.asarray(keep[:4], dtype=np.int64))
        rest = np.setdiff1d(idx, must)
        rest = rest[uniform_indices(rest.shape[0], max_points - must.shape[0])] if max_points > must.shape[0] \
            else rest[:0]
        idx = np.union1d(must, rest)
    return xs[idx], ys[idx]
