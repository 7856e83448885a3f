"""Curve reduction for the UI, over the core's one downsampling implementation
(:mod:`weightslab.operations.downsample`).

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
from weightslab.operations.downsample import extreme_indices, mean_by_step, uniform_indices

from weightslab_data_cache.codec import id_text

__all__ = ["break_by_slices", "downsample_curve", "mean_by_step", "uniform_indices"]


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
    """At most ``max_points`` points (0 = no cap) keeping endpoints and global min/max
    (:func:`weightslab.operations.downsample.extreme_indices`, the one implementation).
    ``x_range = (lo, hi)`` (inclusive, either may be None) selects the part of the curve first."""
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
    idx = extreme_indices(ys, max_points)
    return xs[idx], ys[idx]
