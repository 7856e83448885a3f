"""Apply a previewed edit through the core edit operation, audited like any edit.

The core operation (``weightslab.operations.edits.edit_samples``) edits by sample ids within a
split, so the previewed rows are sent split by split: exactly the rows the preview showed, with
one ``edit_samples`` audit record per split whose caller is the agent and names the question.
Without the operations layer (an older core) ``Experiment.edit`` is called on the rows directly,
with one audit record of the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

DEFAULT_LOCK_TIMEOUT = 30.0
MAX_QUESTION_AUDITED = 500


def _caller(question: str, plan_id: str, caller: Mapping[str, Any] | None) -> dict[str, Any]:
    who = {k: v for k, v in dict(caller or {}).items() if k != "transport"}
    return {**who, "via": (caller or {}).get("transport"), "question": question[:MAX_QUESTION_AUDITED],
            "plan_id": plan_id}


def apply_edit(experiment: Any, *, action: str, tag: str | None, value: str | None, rows: np.ndarray,
               question: str, plan_id: str, caller: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Edit exactly ``rows``; returns ``matched``, ``changed`` and the first ``sample_ids``."""
    rows = np.asarray(rows, dtype=np.int64)
    identity = _caller(question, plan_id, caller)
    try:
        from weightslab.operations import Caller
        from weightslab.operations.edits import EditRequest, edit_samples
    except ImportError:
        return _direct(experiment, action, tag, value, rows, identity)
    table = experiment.table
    with experiment.data_lock:  # a consistent read of the (append-only) id and split columns
        splits = table.split[rows]
        ids = table.sample_id[rows]
    matched = changed = 0
    sample_ids: list[str] = []
    for split in dict.fromkeys(splits.tolist()):
        mask = splits == split
        request = EditRequest(action=action, ids=tuple(str(s) for s in ids[mask]), split=str(split), tag=tag or "",
                              value=value or "")
        result = edit_samples(experiment, request, Caller("agent", identity))
        matched += result.matched
        changed += result.changed
        sample_ids.extend(result.sample_ids)
    return {"matched": matched, "changed": changed, "sample_ids": sample_ids[:1000]}


def _direct(experiment: Any, action: str, tag: str | None, value: str | None, rows: np.ndarray,
            identity: dict[str, Any]) -> dict[str, Any]:
    from weightslab.audit import get_audit_log

    params = {"action": action, "tag": tag, "value": value, "rows": int(len(rows))}
    with get_audit_log(experiment).interaction("edit_samples", params=params,
                                               caller={"transport": "agent", **identity}) as entry:
        try:
            timeout = float(experiment.config["watchdog"].stuck_seconds)
        except (KeyError, TypeError, AttributeError, ValueError):
            timeout = DEFAULT_LOCK_TIMEOUT
        result = experiment.edit(action, rows=rows, tag=tag, value=value, lock_timeout=timeout)
        entry.result = {"matched": result["matched"], "changed": result["changed"]}
    return dict(result)
