"""SDK: history queries (``wl.query_signal_history``...) and the current experiment hash."""

from __future__ import annotations

from typing import Any

import numpy as np

from weightslab.sdk import get_experiment
from weightslab.table import normalize_id


def get_current_experiment_hash() -> str | None:
    """The current branch (experiment hash), or ``None`` before the experiment started."""
    experiment = get_experiment()
    return experiment.branch or None


def _branch(exp_hash: str | None) -> str:
    return exp_hash if exp_hash is not None else get_experiment().branch


def _check_signal(signal_name: str) -> None:
    known = get_experiment().history.signals()
    if signal_name not in known:
        raise ValueError(f"signal_name={signal_name!r}: unknown; recorded: {', '.join(known) or 'none yet'}")


def query_signal_history(signal_name: str, exp_hash: str | None = None) -> list[tuple[str, int, float, str]]:
    """``(sample_id, step, value, experiment_hash)`` of every recorded value of one signal.

    ``exp_hash``: that branch (default: the current one).
    """
    _check_signal(signal_name)
    experiment = get_experiment()
    branch = _branch(exp_hash)
    rows, steps, values, codes = experiment.history.arrays(signal_name)
    code = experiment.history.code_of(branch)
    if code is None:
        return []
    keep = codes == code
    ids = experiment.table.sample_id[rows[keep]]
    return [(str(s), int(st), float(v), branch)
            for s, st, v in zip(ids.tolist(), steps[keep].tolist(), values[keep].tolist(), strict=True)]


def query_sample_history(sample_id: Any, signal_name: str | None = None,
                         exp_hash: str | None = None) -> list[tuple[str, int, float, str]]:
    """``(signal_name, step, value, experiment_hash)`` of one sample (every split it is in)."""
    if signal_name is not None:
        _check_signal(signal_name)
    experiment = get_experiment()
    sid = normalize_id(sample_id)
    experiment.recorder.drain()
    with experiment.data_lock:
        sample_rows = np.flatnonzero(experiment.table.sample_id[: experiment.table.n] == sid)
    if not len(sample_rows):
        raise ValueError(f"sample_id={sample_id!r}: no such sample")
    branch = _branch(exp_hash)
    code = experiment.history.code_of(branch)
    out: list[tuple[str, int, float, str]] = []
    if code is None:
        return out
    for signal in [signal_name] if signal_name is not None else experiment.history.signals():
        rows, steps, values, codes = experiment.history.arrays(signal)
        keep = np.isin(rows, sample_rows) & (codes == code)
        out += [(signal, int(st), float(v), branch)
                for st, v in zip(steps[keep].tolist(), values[keep].tolist(), strict=True)]
    return out


def query_instance_history(sample_id: Any, annotation_id: Any, signal_name: str | None = None,
                           exp_hash: str | None = None) -> list[tuple[str, int, float, str]]:
    """``(signal_name, step, value, experiment_hash)`` of one instance (annotation) of a sample."""
    experiment = get_experiment()
    experiment.recorder.drain()
    rows = experiment.instance_history.rows(normalize_id(sample_id), normalize_id(annotation_id),
                                            signal=signal_name, branch=_branch(exp_hash))
    return [(signal, step, value, branch) for signal, _, step, value, branch in rows]
