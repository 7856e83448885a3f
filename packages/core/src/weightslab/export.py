"""``wl.dataframe()``, ``wl.write_dataframe()`` and ``wl.write_history()``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from weightslab.table import normalize_id

if TYPE_CHECKING:
    from weightslab.experiment import Experiment

FORMATS = ("csv", "json", "parquet")


def to_dataframe(experiment: Experiment) -> Any:
    """One row per ``(split, sample_id)``: labels, predictions, latest signals, tags, discards."""
    import pandas as pd

    experiment.recorder.drain()
    with experiment.data_lock:
        frame = experiment.table.frame(copy=True)
        frame.columns.update(experiment.mislabel.columns(experiment.table.n))
        if experiment.embeddings is not None:  # outlier_score, near_duplicate_of, ... (opt-in)
            frame.columns.update(experiment.embeddings.columns(experiment.table.n))
        frame.columns.update(experiment.suggestions.columns(experiment.table.n, experiment.table.numeric.get("label")))
        instance_signals = {sig: dict(per) for sig, per in experiment.instance_signals.items()}
    n = len(frame.sample_id)
    data: dict[str, Any] = {"split": frame.split.astype(str), "sample_id": frame.sample_id.astype(str)}
    for name in sorted(frame.columns):
        data[name] = frame.columns[name]
    tag_names = sorted(frame.tags)
    data["tags"] = [[t for t in tag_names if frame.tags[t][i]] for i in range(n)]
    for name in sorted(frame.tags):
        data[f"tag:{name}"] = frame.tags[name]
    for name in sorted(frame.categories):
        data[f"tag:{name}"] = frame.categories[name]
    data["discarded"] = frame.discarded
    for column in ("last_seen_step", "seen_count"):
        if column in data:
            data[column] = np.asarray(data[column]).astype(np.int64)
    if instance_signals:
        breakdown: list[dict[str, Any] | None] = []
        for split, sid in zip(data["split"], data["sample_id"], strict=True):
            entry = {sig: dict(per[(split, sid)]) for sig, per in instance_signals.items()
                     if (split, sid) in per}
            breakdown.append(entry or None)
        data["_instance_signals"] = breakdown
    return pd.DataFrame(data)


def _target(experiment: Experiment, path: str | Path | None, stem: str, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}: expected one of {', '.join(FORMATS)}")
    if path is None:
        return experiment.root_log_dir / "exports" / f"{stem}.{fmt}"
    target = Path(path)
    if target.is_dir() or not target.suffix:
        return target / f"{stem}.{fmt}"
    suffix = target.suffix.lstrip(".").lower()
    if suffix in FORMATS and suffix != fmt:  # never CSV bytes in a file named .parquet
        raise ValueError(f"path {target.name!r} names a .{suffix} file but format={fmt!r}: "
                         f"pass format={suffix!r} or a matching file name")
    return target


def resolve_format(path: str | Path | None, fmt: str | None) -> str:
    """An explicit ``format`` wins; else the path's suffix when it names a format; else CSV."""
    if fmt is not None:
        return fmt.lower() if isinstance(fmt, str) else fmt
    suffix = Path(path).suffix.lstrip(".").lower() if path is not None else ""
    if suffix == "jsonl":  # what format="json" writes: JSON lines
        return "json"
    if suffix and suffix not in FORMATS and not Path(str(path)).is_dir():
        # never CSV bytes in a file named .xlsx/.feather/...: say what is written instead of guessing
        raise ValueError(f"path {Path(str(path)).name!r}: .{suffix} is not an export format; expected a "
                         f"file name ending in .{', .'.join(FORMATS)} (or .jsonl), a folder, or format=")
    return suffix if suffix in FORMATS else "csv"


def _write(df: Any, target: Path, fmt: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    if fmt == "csv":
        df.to_csv(tmp, index=False)
    elif fmt == "json":
        df.to_json(tmp, orient="records", lines=True)
    else:
        try:
            df.to_parquet(tmp, index=False)
        except ImportError as exc:
            raise ValueError("format='parquet' needs pyarrow: pip install pyarrow") from exc
    tmp.replace(target)
    return target


def write_dataframe(experiment: Experiment, path: str | Path | None, fmt: str | None, *,
                    columns: list[str] | None = None, sample_id: Any = None, instance_id: Any = None) -> Path:
    fmt = resolve_format(path, fmt)
    df = to_dataframe(experiment)
    if sample_id is not None:
        df = df[df["sample_id"] == normalize_id(sample_id)]
        if df.empty:
            raise ValueError(f"sample_id={sample_id!r}: no such sample")
        if instance_id is not None:
            df = _instance_frame(df, instance_id)
    elif instance_id is not None:
        raise ValueError("instance_id needs sample_id (instances are numbered within a sample)")
    if columns is not None:
        unknown = sorted(set(columns) - set(df.columns))
        if unknown:
            raise ValueError(f"columns: unknown {', '.join(unknown)}; known: {', '.join(map(str, df.columns))}")
        df = df[["split", "sample_id", *[c for c in columns if c not in ("split", "sample_id")]]]
    if fmt != "parquet" and "tags" in df.columns:
        df = df.assign(tags=[",".join(t) for t in df["tags"]])
    return _write(df, _target(experiment, path, "samples", fmt), fmt)


def _instance_frame(df: Any, instance_id: Any) -> Any:
    """One instance's latest per-signal values, from the row's ``_instance_signals`` breakdown."""
    import pandas as pd

    aid = normalize_id(instance_id)
    row = df.iloc[0]
    breakdown = row.get("_instance_signals") if "_instance_signals" in df.columns else None
    values = {sig: per[aid] for sig, per in (breakdown or {}).items() if aid in per}
    if not values:
        raise ValueError(f"instance_id={instance_id!r}: sample {row['sample_id']!r} has no such instance")
    return pd.DataFrame([{"split": row["split"], "sample_id": row["sample_id"], "instance_id": aid, **values}])


def _check_signals(experiment: Experiment, signals: list[str] | None) -> list[str]:
    known = experiment.history.signals()
    if signals is None:
        return known
    unknown = sorted(set(signals) - set(known))
    if unknown:
        raise ValueError(f"signals: unknown {', '.join(unknown)}; recorded: {', '.join(known) or 'none yet'}")
    return list(signals)


def history_dataframe(experiment: Experiment, signals: list[str] | None = None) -> Any:
    import pandas as pd

    parts = []
    table = experiment.table
    for signal in signals or experiment.history.signals():
        rows, steps, values, codes = experiment.history.arrays(signal)
        if not len(rows):
            continue
        parts.append(pd.DataFrame({
            "signal": signal, "split": table.split[rows].astype(str), "sample_id": table.sample_id[rows].astype(str),
            "step": steps, "value": values, "branch": np.asarray(experiment.history.branches, dtype=object)[codes],
        }))
    if not parts:
        return pd.DataFrame(columns=["signal", "split", "sample_id", "step", "value", "branch"])
    return pd.concat(parts, ignore_index=True)


HISTORY_KINDS = ("sample", "curve", "instance")


def curve_dataframe(experiment: Experiment, signals: list[str]) -> Any:
    import pandas as pd

    rows = [{"signal": s, "split": p.split, "step": p.step, "value": p.value, "branch": p.branch}
            for s in signals for p in experiment.history.curve(s)]
    return pd.DataFrame(rows, columns=["signal", "split", "step", "value", "branch"])


def write_history(experiment: Experiment, path: str | Path | None, fmt: str | None,
                  signals: list[str] | None = None, *, kind: str | None = None, branch: str | None = None,
                  sample_id: Any = None, instance_id: Any = None) -> Path:
    fmt = resolve_format(path, fmt)
    kind = kind or ("instance" if instance_id is not None else "sample")
    if kind not in HISTORY_KINDS:
        raise ValueError(f"type_of_history={kind!r}: expected one of {', '.join(HISTORY_KINDS)}")
    names = _check_signals(experiment, signals)
    if kind == "curve":
        df = curve_dataframe(experiment, names)
    elif kind == "instance":
        if sample_id is None or instance_id is None:
            raise ValueError("type_of_history='instance' needs sample_id and instance_id")
        df = experiment.instance_history.frame(normalize_id(sample_id), normalize_id(instance_id),
                                                signals=signals)
    else:
        df = history_dataframe(experiment, names)
        if sample_id is not None:
            df = df[df["sample_id"] == normalize_id(sample_id)]
    if branch is not None:
        df = df[df["branch"] == branch]
    return _write(df, _target(experiment, path, "history", fmt), fmt)
