"""Apply a previewed edit: through the core edit operation, audited with the question."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

log = logging.getLogger("weightslab.agent")
DEFAULT_LOCK_TIMEOUT = 30.0


def lock_timeout(experiment: Any) -> float:
    """The same bounded wait for the main lock every front end uses."""
    try:
        from weightslab.operations import lock_timeout as core_lock_timeout  # the core operations layer
    except ImportError:
        core_lock_timeout = None
    if core_lock_timeout is not None:
        return float(core_lock_timeout(experiment))
    try:
        return float(experiment.config["watchdog"].stuck_seconds)
    except (KeyError, TypeError, AttributeError, ValueError):
        return DEFAULT_LOCK_TIMEOUT


def apply_edit(experiment: Any, *, action: str, tag: str | None, value: str | None, rows: np.ndarray,
               question: str, plan: Mapping[str, Any], caller: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``Experiment.edit`` on exactly the previewed rows, with one ``edit_samples`` audit record
    (the same action name as edits from gRPC and the CLI) that carries the question and the plan."""
    from weightslab.audit import get_audit_log

    params = {"action": action, "tag": tag, "value": value, "rows": int(len(rows)), "source": "agent",
              "question": question, "plan": dict(plan)}
    who = {"transport": "agent", **dict(caller or {})}
    with get_audit_log(experiment).interaction("edit_samples", params=params, caller=who) as entry:
        result = experiment.edit(action, rows=np.asarray(rows, dtype=np.int64), tag=tag, value=value,
                                 lock_timeout=lock_timeout(experiment))
        entry.result = {"matched": result["matched"], "changed": result["changed"]}
    return dict(result)
