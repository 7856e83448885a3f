"""Histograms of a numeric column by value or of a sorted order by position, by split and discarded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import QueryError, QueryTypeError
from .filtering import filter_mask
from .frame import Frame
from .spec import Filter

MAX_BINS = 100_000


@dataclass
class Histogram:
    """Counts per bin, broken down by split and by discarded.

    ``edges`` has ``bins + 1`` entries (values for :func:`histogram_by_value`, positions in the
    sorted order for :func:`histogram_by_position`). ``counts`` = all rows per bin;
    ``by_split[s]`` = rows of split ``s``; ``discarded`` = discarded rows;
    ``by_split_discarded[s]`` = discarded rows of split ``s`` (kept = by_split - that).
    ``missing``: rows with a NaN value; ``out_of_range``: rows outside an explicit range.
    """

    edges: np.ndarray
    counts: np.ndarray
    by_split: dict[str, np.ndarray]
    discarded: np.ndarray
    by_split_discarded: dict[str, np.ndarray]
    missing: int = 0
    out_of_range: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "by_split": {k: v.tolist() for k, v in self.by_split.items()},
            "discarded": self.discarded.tolist(),
            "by_split_discarded": {k: v.tolist() for k, v in self.by_split_discarded.items()},
            "missing": self.missing,
            "out_of_range": self.out_of_range,
        }


def _check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or not 1 <= int(bins) <= MAX_BINS:
        raise QueryError(f"bins: expected an integer between 1 and {MAX_BINS}, got {bins!r}")
    return int(bins)


def _breakdown(frame: Frame, rows: np.ndarray, bin_of_row: np.ndarray, bins: int,
               edges: np.ndarray, missing: int = 0, out_of_range: int = 0) -> Histogram:
    """``rows``: row indices or a boolean row mask, aligned with ``bin_of_row``."""
    names, codes = frame.split_codes()
    split_names = [str(s) for s in names]
    nsplit = len(names) + 1  # last slot: missing split
    sc = codes[rows].astype(np.int64)  # codes may be int8: the arithmetic below needs room
    sc = np.where(sc < 0, nsplit - 1, sc)
    d = frame.discarded[rows].astype(np.int64)
    combined = (sc * 2 + d) * bins + bin_of_row
    cube = np.bincount(combined, minlength=nsplit * 2 * bins).reshape(nsplit, 2, bins)
    by_split = {name: cube[i].sum(axis=0) for i, name in enumerate(split_names)}
    by_split_discarded = {name: cube[i, 1].copy() for i, name in enumerate(split_names)}
    if cube[-1].any():
        by_split[""] = cube[-1].sum(axis=0)
        by_split_discarded[""] = cube[-1, 1].copy()
    return Histogram(edges=edges, counts=cube.sum(axis=(0, 1)), by_split=by_split,
                     discarded=cube[:, 1].sum(axis=0), by_split_discarded=by_split_discarded,
                     missing=missing, out_of_range=out_of_range)


def histogram_by_value(frame: Frame, column: str, bins: int,
                       filter: Filter | Mapping[str, Any] | str | None = None,
                       range: tuple[float, float] | None = None) -> Histogram:
    """Equal-width histogram of a numeric (or boolean) column over the rows matching ``filter``.

    The range defaults to the finite min/max of the selected values (a single value v gets
    ``(v - 0.5, v + 0.5)``); bins are half-open except the last, as in ``numpy.histogram``.
    """
    bins = _check_bins(bins)
    arr = frame.column(column, field="column")
    kind = frame.kind(column)
    if kind == "string":
        raise QueryTypeError(f"column: histogram_by_value needs a numeric column, but {column!r} is a "
                             f"string column (group by it and count instead)")
    selected = None if filter is None else filter_mask(frame, filter)
    v = arr.astype(np.float64, copy=False)
    valid = ~np.isnan(v)
    if selected is not None:
        valid &= selected
    nvalid = int(np.count_nonzero(valid))
    nselected = len(frame) if selected is None else int(np.count_nonzero(selected))
    missing = nselected - nvalid
    if range is not None:
        try:
            lo, hi = float(range[0]), float(range[1])
        except (TypeError, ValueError, IndexError):
            raise QueryError(f"range: expected (low, high), got {range!r}") from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise QueryError(f"range: expected finite low < high, got {range!r}")
    else:
        finite = valid & np.isfinite(v)
        if finite.any():
            lo = float(np.min(v, where=finite, initial=np.inf))
            hi = float(np.max(v, where=finite, initial=-np.inf))
        else:
            lo, hi = 0.0, 1.0
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    with np.errstate(invalid="ignore"):
        inside = valid & (v >= lo) & (v <= hi)
    out_of_range = nvalid - int(np.count_nonzero(inside))
    x = v[inside]
    b = ((x - lo) * (bins / (hi - lo))).astype(np.int64)
    np.clip(b, 0, bins - 1, out=b)
    # Fix rounding at the edges so that the bins agree with ``edges`` (as numpy.histogram does).
    b[x < edges[b]] -= 1
    inc = (x >= edges[b + 1]) & (b != bins - 1)
    b[inc] += 1
    np.clip(b, 0, bins - 1, out=b)
    return _breakdown(frame, inside, b, bins, edges, missing=missing, out_of_range=out_of_range)


def histogram_by_position(frame: Frame, order_indices: np.ndarray, bins: int) -> Histogram:
    """Counts by position in a sorted order (e.g. :func:`ordered_indices`), ``bins`` equal
    slices of positions, broken down by split and discarded. ``edges`` are positions."""
    bins = _check_bins(bins)
    rows = np.asarray(order_indices)
    if rows.ndim != 1 or (len(rows) and rows.dtype.kind not in "iu"):
        raise QueryError("order_indices: expected a 1-D array of row indices")
    rows = rows.astype(np.int64, copy=False)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(frame)):
        raise QueryError(f"order_indices: row index out of range for a frame of {len(frame)} rows")
    m = len(rows)
    pos_bin = (np.arange(m, dtype=np.int64) * bins) // max(m, 1)
    edges = np.linspace(0.0, float(m), bins + 1)
    return _breakdown(frame, rows, pos_bin, bins, edges)
