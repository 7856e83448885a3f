"""``wl.dataframe()``, ``wl.write_dataframe()`` and ``wl.write_history()``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

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
    return target / f"{stem}.{fmt}" if target.is_dir() or not target.suffix else target


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


def write_dataframe(experiment: Experiment, path: str | Path | None, fmt: str) -> Path:
    df = to_dataframe(experiment)
    if fmt != "parquet":
        df = df.assign(tags=[",".join(t) for t in df["tags"]])
    return _write(df, _target(experiment, path, "samples", fmt), fmt)


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


def write_history(experiment: Experiment, path: str | Path | None, fmt: str,
                  signals: list[str] | None = None) -> Path:
    return _write(history_dataframe(experiment, signals), _target(experiment, path, "history", fmt), fmt)
