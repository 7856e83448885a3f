"""Apply a previewed edit through the core edit operation, audited like any edit.

The preview records the samples it showed as ``split -> sample ids`` (read from the query frame
it ran on); applying sends exactly those, split by split, to
``weightslab.operations.edits.edit_samples``: one ``edit_samples`` audit record per split whose
caller is the agent and names the question.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from weightslab.operations import Caller
from weightslab.operations.edits import EditRequest, edit_samples

MAX_QUESTION_AUDITED = 500

SampleKeys = dict[str, tuple[str, ...]]


def sample_keys(frame: Any, rows: np.ndarray) -> SampleKeys:
    """``split -> sample ids`` of ``rows`` of a query frame, splits in first-seen order."""
    splits = np.asarray(frame.splits_at(rows)).astype(str)
    ids = np.asarray(frame.ids_at(rows)).astype(str)
    return {split: tuple(ids[splits == split].tolist()) for split in dict.fromkeys(splits.tolist())}


def _caller(question: str, plan_id: str, caller: Mapping[str, Any] | None) -> dict[str, Any]:
    who = {k: v for k, v in dict(caller or {}).items() if k != "transport"}
    return {**who, "via": (caller or {}).get("transport"), "question": question[:MAX_QUESTION_AUDITED],
            "plan_id": plan_id}


def apply_edit(experiment: Any, *, action: str, tag: str | None, value: str | None, keys: SampleKeys,
               question: str, plan_id: str, caller: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Edit exactly the samples ``keys`` names; returns ``matched``, ``changed`` and the first ``sample_ids``."""
    identity = Caller("agent", _caller(question, plan_id, caller))
    matched = changed = 0
    sample_ids: list[str] = []
    for split, ids in keys.items():
        request = EditRequest(action=action, ids=ids, split=split, tag=tag or "", value=value or "")
        result = edit_samples(experiment, request, identity)
        matched += result.matched
        changed += result.changed
        sample_ids.extend(result.sample_ids)
    return {"matched": matched, "changed": changed, "sample_ids": sample_ids[:1000]}
