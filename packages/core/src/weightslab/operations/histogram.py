"""Histograms of the sample table: by value (numeric, or one bin per text value) and by
position in a sorted order, broken down by split and discarded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from weightslab.operations._base import InvalidRequest, text
from weightslab.operations._frames import snapshot
from weightslab.operations.samples import QueryLike, SortKey, parse_query, sort_keys, with_changes

DEFAULT_BINS = 64
MAX_BINS = 4096  # per request, so a response stays small (the engine itself accepts more)
MODES = ("value", "position")
OTHER = "(other)"


@dataclass(frozen=True)
class HistogramRequest:
    query: QueryLike = None
    mode: str = "value"  # value | position
    column: str = ""  # by value: the column binned
    bins: int = 0  # 0 = 64
    sort: tuple[SortKey, ...] = ()  # by position: the order (default: the query's sort)
    min: float | None = None  # by value: range (default: data range); give both or neither
    max: float | None = None


@dataclass(frozen=True)
class HistogramSeries:
    split: str
    discarded: bool
    counts: tuple[int, ...]


@dataclass(frozen=True)
class HistogramResult:
    mode: str
    column: str
    edges: tuple[float, ...]  # numeric bins or positions (bins + 1); empty for text columns
    categories: tuple[str, ...]  # bins of a text column, most frequent first ("(other)" last)
    series: tuple[HistogramSeries, ...]  # per split: kept rows, then discarded rows
    total: int
    missing: int  # rows without a value in ``column``


def _range(request: HistogramRequest, bins: int) -> tuple[float, float] | None:
    if (request.min is None) != (request.max is None):
        raise InvalidRequest("min/max", "give both or neither")
    if request.min is None or request.max is None:
        return None
    lo, hi = float(request.min), float(request.max)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InvalidRequest("min/max", "expected finite numbers")
    if hi <= lo:
        raise InvalidRequest.of("max", hi, f"expected > min={lo:g}")
    with np.errstate(all="ignore"):
        edges = np.linspace(lo, hi, bins + 1)
    if not (np.isfinite(edges).all() and (np.diff(edges) > 0).all()):
        raise InvalidRequest("min/max", f"[{lo:g}, {hi:g}] cannot be cut into {bins} bins "
                                        "(the range overflows or is too narrow)")
    return lo, hi


def histogram(experiment: Any, request: HistogramRequest) -> HistogramResult:
    from weightslab.query import (
        QueryError,
        histogram_by_position,
        histogram_by_value,
        ordered_indices,
    )

    if request.mode not in MODES:
        raise InvalidRequest.of("mode", request.mode, f"expected one of {', '.join(MODES)}")
    bins = request.bins or DEFAULT_BINS
    if not 1 <= bins <= MAX_BINS:
        raise InvalidRequest.of("bins", bins, f"expected 1..{MAX_BINS} (0 = {DEFAULT_BINS})")
    query = parse_query(request.query)
    if query.group is not None:
        raise InvalidRequest("query", "grouped queries are not supported by histograms")
    if request.sort:
        query = with_changes(query, sort=sort_keys(request.sort))
    column = text(request.column, "column")
    frame = snapshot(experiment)
    try:
        if request.mode == "position":
            hist = histogram_by_position(frame, ordered_indices(frame, query), bins)
            missing = 0
        else:
            if not column:
                raise InvalidRequest("column", "required for a histogram by value")
            if query.top_k is not None:
                raise InvalidRequest("query", "top_k is not supported by a histogram by value")
            kind = frame.kind(column, field="column")
            value_range = _range(request, bins)
            if kind == "string":
                return _by_category(frame, column, bins, query.filter)
            hist = histogram_by_value(frame, column, bins, filter=query.filter, range=value_range)
            missing = int(hist.missing)
    except QueryError as exc:
        raise InvalidRequest("", str(exc)) from None
    series: list[HistogramSeries] = []
    for split in sorted(hist.by_split):
        total = np.asarray(hist.by_split[split])
        gone = np.asarray(hist.by_split_discarded.get(split, np.zeros_like(total)))
        series.append(HistogramSeries(split, False, tuple((total - gone).tolist())))
        series.append(HistogramSeries(split, True, tuple(gone.tolist())))
    return HistogramResult(mode=request.mode, column=column, edges=tuple(float(e) for e in hist.edges.tolist()),
                           categories=(), series=tuple(series),
                           total=int(np.asarray(hist.counts).sum()) + missing + int(hist.out_of_range),
                           missing=missing)


def _by_category(frame: Any, column: str, bins: int, flt: Any) -> HistogramResult:
    """One bin per text value (most frequent first; past ``bins - 1`` values the rest share "(other)")."""
    from weightslab.query import factorize, select

    rows = select(frame, flt)
    uniques, codes = factorize(frame.column(column)[rows])
    present = codes >= 0
    missing = int((~present).sum())
    rows, codes = rows[present], codes[present]
    counts = np.bincount(codes, minlength=len(uniques)) if len(uniques) else np.zeros(0, np.int64)
    order = np.argsort(-counts, kind="stable")
    shown = order[: bins if len(order) <= bins else bins - 1]
    slot = np.full(len(uniques), len(shown), dtype=np.int64)
    slot[shown] = np.arange(len(shown))
    names = [str(uniques[i]) for i in shown.tolist()]
    if len(order) > len(shown):
        names.append(OTHER)
    nbins = max(len(names), 1)
    bin_of_row = slot[codes] if len(codes) else np.zeros(0, np.int64)
    split_names, split_codes = frame.split_codes()
    sc = split_codes[rows]
    disc = frame.discarded[rows]
    series = []
    for s, split in enumerate(split_names):
        for flag in (False, True):
            sel = (sc == s) & (disc == flag)
            series.append(HistogramSeries(str(split), flag,
                                          tuple(np.bincount(bin_of_row[sel], minlength=nbins)[:nbins].tolist())))
    return HistogramResult(mode="value", column=column, edges=(), categories=tuple(names), series=tuple(series),
                           total=len(rows) + missing, missing=missing)
