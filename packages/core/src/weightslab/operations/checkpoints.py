"""Checkpoints: list, save, restore (the experiment's ``CheckpointManager``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from weightslab.operations._base import SDK, Caller, InvalidRequest, Unavailable, audited, lock_timeout, text

MAX_ID = 1024
MAX_NOTE = 10_000


@dataclass(frozen=True)
class Checkpoint:
    id: str
    step: int
    branch: str  # after a restore: the new branch the run continues on
    created_at: str  # ISO 8601, UTC
    note: str
    parent_branch: str
    reason: str  # manual | periodic | restore ...
    details: dict[str, Any]


@dataclass(frozen=True)
class RestoreRequest:
    checkpoint_id: str | None = None  # exactly one of checkpoint_id / step
    step: int | None = None  # the closest checkpoint at or before this step
    branch: str = ""  # with step: the branch (empty = current and its ancestors)
    force: bool = False  # restore even while training runs
    restore_hyperparameters: bool = True


def _manager(experiment: Any) -> Any:
    checkpoints = getattr(experiment, "checkpoints", None)
    if checkpoints is None:
        raise Unavailable("checkpoints not available")
    return checkpoints


def _checkpoint(entry: Mapping[str, Any]) -> Checkpoint:
    """A manifest entry (``CheckpointManager`` format: ``time`` is a POSIX timestamp)."""
    created = entry.get("time")
    created_at = datetime.fromtimestamp(float(created), UTC).isoformat() if isinstance(created, (int, float)) else ""
    return Checkpoint(id=str(entry.get("id", "")), step=int(entry.get("step", 0) or 0),
                      branch=str(entry.get("branch", "") or ""), created_at=created_at,
                      note=str(entry.get("note", "") or ""), parent_branch=str(entry.get("parent_branch") or ""),
                      reason=str(entry.get("reason", "") or ""), details=dict(entry))


def list_checkpoints(experiment: Any, branch: str = "") -> tuple[Checkpoint, ...]:
    branch = text(branch, "branch", max_len=MAX_ID)
    return tuple(_checkpoint(e) for e in _manager(experiment).list(branch or None))


def save_checkpoint(experiment: Any, note: str = "", caller: Caller = SDK) -> Checkpoint:
    with audited(experiment, caller, "save_checkpoint", {"note": note or None}) as entry:
        note = text(note, "note", max_len=MAX_NOTE)
        saved = _checkpoint(_manager(experiment).save(note=note or None, lock_timeout=lock_timeout(experiment)))
        entry.after = {"id": saved.id, "step": saved.step, "branch": saved.branch}
    return saved


def restore_checkpoint(experiment: Any, request: RestoreRequest, caller: Caller = SDK) -> Checkpoint:
    params = {"checkpoint_id": request.checkpoint_id or None, "step": request.step,
              "branch": request.branch or None, "force": request.force or None,
              "restore_hyperparameters": request.restore_hyperparameters}
    with audited(experiment, caller, "restore_checkpoint", params) as entry:
        if (request.checkpoint_id is None) == (request.step is None):
            raise InvalidRequest("target", "give checkpoint_id or step (exactly one)")
        if request.checkpoint_id is not None:
            text(request.checkpoint_id, "checkpoint_id", required=True, max_len=MAX_ID)
        elif request.step is not None and request.step < 0:
            raise InvalidRequest.of("step", request.step, "expected >= 0")
        branch = text(request.branch, "branch", max_len=MAX_ID)
        manager = _manager(experiment)
        entry.before = {"step": int(experiment.step), "branch": str(experiment.branch)}
        restored = _checkpoint(manager.restore(
            step=request.step, branch=branch or None, checkpoint_id=request.checkpoint_id, force=request.force,
            restore_hyperparameters=request.restore_hyperparameters, lock_timeout=lock_timeout(experiment)))
        entry.after = {"id": restored.id, "step": restored.step, "branch": restored.branch}
    return restored
