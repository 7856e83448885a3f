"""Curves: per-client cursor, x-range, extreme-preserving downsampling; break-by-slices;
per-sample trajectories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from weightslab.operations._base import InvalidRequest, data_lock, names, text
from weightslab.operations._frames import snapshot
from weightslab.operations.downsample import extreme_indices, mean_by_step, uniform_indices

MAX_SIGNALS = 1000
MAX_CURVE_POINTS = 1_000_000
MAX_SLICE_TAGS = 64
MAX_ID = 1024
DEFAULT_MAX_POINTS_PER_SAMPLE = 200


@dataclass(frozen=True)
class CurvesRequest:
    signals: tuple[str, ...] = ()  # empty = every signal
    since_seq: int = 0  # client cursor (0 = from the beginning)
    split: str = ""
    branch: str = ""
    min_step: int | None = None  # x-range, inclusive
    max_step: int | None = None
    max_points: int = 0  # per series; 0 = no cap


@dataclass(frozen=True)
class CurveSeries:
    signal: str
    split: str
    branch: str
    steps: tuple[int, ...]
    values: tuple[float, ...]
    seqs: tuple[int, ...]  # 0 for aggregated points
    total_points: int
    downsampled: bool


@dataclass(frozen=True)
class Marker:
    step: int
    kind: str
    text: str
    branch: str
    details: dict[str, Any]


@dataclass(frozen=True)
class CurvesResult:
    series: tuple[CurveSeries, ...]
    next_seq: int  # pass back as since_seq
    branches: tuple[str, ...]
    markers: tuple[Marker, ...]


def _step_range(min_step: int | None, max_step: int | None) -> None:
    if min_step is not None and max_step is not None and max_step < min_step:
        raise InvalidRequest.of("max_step", max_step, f"expected >= min_step={min_step}")


def get_curves(experiment: Any, request: CurvesRequest) -> CurvesResult:
    signals = names(request.signals, "signals", max_items=MAX_SIGNALS)
    if request.since_seq < 0:
        raise InvalidRequest.of("since_seq", request.since_seq, "expected >= 0 (0 = from the beginning)")
    split = text(request.split, "split")
    branch = text(request.branch, "branch", max_len=MAX_ID)
    max_points = request.max_points
    if max_points and not 4 <= max_points <= MAX_CURVE_POINTS:
        raise InvalidRequest.of("max_points", max_points, f"expected 0 (no cap) or 4..{MAX_CURVE_POINTS}")
    lo, hi = request.min_step, request.max_step
    _step_range(lo, hi)
    history = experiment.history
    experiment.recorder.drain()  # fold queued records in first: fresher points
    next_seq = int(history.last_seq)  # every point with seq <= next_seq is already stored
    out: list[CurveSeries] = []
    for signal in dict.fromkeys(signals or history.signals()):
        points = history.curve(signal, since_seq=request.since_seq, split=split or None, branch=branch or None)
        groups: dict[tuple[str, str], list[Any]] = {}
        for p in points:
            if p.seq > next_seq or (lo is not None and p.step < lo) or (hi is not None and p.step > hi):
                continue
            groups.setdefault((p.split, p.branch), []).append(p)
        for (p_split, p_branch), items in groups.items():
            total = len(items)
            if max_points and total > max_points:
                values = np.fromiter((p.value for p in items), dtype=np.float64, count=total)
                items = [items[i] for i in extreme_indices(values, max_points).tolist()]
            out.append(CurveSeries(signal=signal, split=p_split, branch=p_branch,
                                   steps=tuple(p.step for p in items), values=tuple(p.value for p in items),
                                   seqs=tuple(p.seq for p in items), total_points=total,
                                   downsampled=len(items) < total))
    markers: list[Marker] = []
    for marker in list(getattr(history, "markers", []) or []):
        data = dict(marker)
        step = int(data.get("step", 0) or 0)
        if (lo is not None and step < lo) or (hi is not None and step > hi):
            continue
        markers.append(Marker(step=step, kind=str(data.get("kind", "") or ""), text=str(data.get("text", "") or ""),
                              branch=str(data.get("branch", "") or ""), details=data))
    return CurvesResult(series=tuple(out), next_seq=next_seq, branches=tuple(history.branches),
                        markers=tuple(markers))


# -- break by slices ------------------------------------------------------------------------


@dataclass(frozen=True)
class BreakBySlicesRequest:
    signal: str
    tags: tuple[str, ...]  # "name" (boolean) or "name=value" (categorical); all must match
    split: str = ""
    branches: tuple[str, ...] = ()  # empty = every branch


@dataclass(frozen=True)
class BreakBySlicesResult:
    series: tuple[CurveSeries, ...]  # one mean curve per branch
    matched_samples: int
    max_points: int  # WL_MAX_POINTS_PER_SAMPLE in effect (0 = no cap)


def max_points_per_sample(experiment: Any) -> int:
    config = getattr(experiment, "config", None)
    section = config.get("data_cache") if config is not None and hasattr(config, "get") else None
    value = getattr(section, "max_points_per_sample", None)
    return DEFAULT_MAX_POINTS_PER_SAMPLE if value is None else int(value)


def tags_filter(tags: tuple[str, ...]) -> Any:
    """The query filter "has every tag" (``name`` boolean, ``name=value`` categorical)."""
    from weightslab.query import All, CategoryEquals, HasTag

    parts: list[Any] = []
    for tag in tags:
        name, sep, value = tag.partition("=")
        parts.append(CategoryEquals(tag=name, value=value) if sep else HasTag(tag=name))
    return All(filters=tuple(parts))


def break_by_slices(experiment: Any, request: BreakBySlicesRequest) -> BreakBySlicesResult:
    from weightslab.query import QueryError, select

    signal = text(request.signal, "signal", required=True)
    tags = names(request.tags, "tags", max_items=MAX_SLICE_TAGS)
    if not tags:
        raise InvalidRequest("tags", "give at least one tag (name, or name=value for a categorical tag)")
    split = text(request.split, "split")
    wanted = set(names(request.branches, "branches", max_items=1000, max_len=MAX_ID))
    frame = snapshot(experiment)
    try:
        flt = tags_filter(tags)
    except ValueError as exc:  # pydantic: a malformed tag name
        raise InvalidRequest("tags", str(exc)) from None
    known_tags = set(frame.tags) | set(frame.categories)
    try:  # a tag nobody has yet matches no row
        rows = select(frame, flt) if all(t.partition("=")[0] in known_tags for t in tags) \
            else np.zeros(0, dtype=np.int64)
    except QueryError as exc:
        raise InvalidRequest("tags", str(exc)) from None
    if split:
        rows = rows[frame.splits_at(rows) == split]
    history = experiment.history
    h_rows, h_steps, h_values, h_codes = history.arrays(signal)
    if len(h_rows) == 0 and signal not in history.signals():
        with data_lock(experiment):
            known = ", ".join(getattr(experiment.table, "signal_names", [])) or "none"
        raise InvalidRequest.of("signal", signal, f"no per-sample history for it; known: {known}")
    cap = max_points_per_sample(experiment)
    sel = np.isin(h_rows, rows)
    branch_names = list(history.branches)
    out: list[CurveSeries] = []
    for code in np.unique(h_codes[sel]).tolist():
        branch = branch_names[code] if code < len(branch_names) else ""
        if wanted and branch not in wanted:
            continue
        bsel = sel & (h_codes == code)
        steps, means = mean_by_step(h_steps[bsel], h_values[bsel])
        if not len(steps):
            continue
        keep = uniform_indices(len(steps), cap)
        out.append(CurveSeries(signal=signal, split=split, branch=branch, steps=tuple(steps[keep].tolist()),
                               values=tuple(means[keep].tolist()), seqs=(0,) * len(keep),
                               total_points=len(steps), downsampled=len(keep) < len(steps)))
    return BreakBySlicesResult(series=tuple(out), matched_samples=len(rows), max_points=cap)


# -- trajectories --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrajectoryRequest:
    sample_id: str
    split: str = ""  # empty = the only split having the id
    signals: tuple[str, ...] = ()  # empty = every per-sample signal
    max_points: int = 0  # per signal; 0 = no cap


@dataclass(frozen=True)
class Trajectory:
    signal: str
    steps: tuple[int, ...]
    values: tuple[float, ...]
    branches: tuple[str, ...]


@dataclass(frozen=True)
class TrajectoryResult:
    sample_id: str
    split: str
    trajectories: tuple[Trajectory, ...]


def row_of(experiment: Any, sample_id: str, split: str, prefix: str = "") -> tuple[int, str]:
    """``(row, split)`` of one sample; an id in several splits needs its split named."""
    text(sample_id, f"{prefix}sample_id", required=True, max_len=MAX_ID)
    text(split, f"{prefix}split")
    experiment.recorder.drain()
    with data_lock(experiment):
        table = experiment.table
        rows = table.find([sample_id], split or None)
        splits = [str(table.split[r]) for r in rows.tolist()]
    if len(rows) > 1:
        raise InvalidRequest(f"{prefix}split", f"sample {sample_id!r} is in several splits ({', '.join(splits)}): "
                                               "name one")
    return int(rows[0]), splits[0]


def trajectory(experiment: Any, request: TrajectoryRequest) -> TrajectoryResult:
    signals = names(request.signals, "signals", max_items=MAX_SIGNALS)
    if request.max_points and not 0 < request.max_points <= MAX_CURVE_POINTS:
        raise InvalidRequest.of("max_points", request.max_points, f"expected 0 (no cap) or 1..{MAX_CURVE_POINTS}")
    row, split = row_of(experiment, request.sample_id, request.split)
    with data_lock(experiment):
        known = list(getattr(experiment.table, "signal_names", []))
    for i, signal in enumerate(signals):
        if signal not in known:
            raise InvalidRequest.of(f"signals[{i}]", signal, f"no per-sample history; known: "
                                                             f"{', '.join(known) or 'none'}")
    out: list[Trajectory] = []
    for signal in signals or tuple(known):
        steps, values, branches = experiment.history.trajectory(signal, row)
        keep = uniform_indices(len(steps), request.max_points)
        out.append(Trajectory(signal=signal, steps=tuple(steps[keep].tolist()), values=tuple(values[keep].tolist()),
                              branches=tuple(branches[i] for i in keep.tolist())))
    return TrajectoryResult(sample_id=request.sample_id, split=split, trajectories=tuple(out))
