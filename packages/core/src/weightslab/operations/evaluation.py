"""Evaluation passes: start, status, cancel (the experiment's ``EvaluationController``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weightslab.operations._base import SDK, Caller, InvalidRequest, Unavailable, audited, names, text

MAX_BATCH_SIZE = 1_000_000
MAX_TAGS = 64


@dataclass(frozen=True)
class StartEvaluationRequest:
    split: str = ""  # a watched loader; empty = the evaluation loader
    eval_fn: str = ""  # registered @wl.eval_fn name or "default"; empty = automatic
    tags: tuple[str, ...] = ()  # only samples having all these tags ("name" or "name=value")
    max_steps: int | None = None  # at most this many batches (>= 1)
    resume_after: bool | None = None  # None: keep the training state found
    include_discarded: bool = False
    batch_size: int = 0  # 0 = the loader's batch size
    model: str = ""  # watched model name; empty = the first one


@dataclass(frozen=True)
class EvaluationStatus:
    state: str  # idle | running | done | cancelled | timeout | error
    progress: float  # 0..1
    split: str
    metrics: dict[str, float]  # finite metrics only
    message: str
    id: str
    eval_fn: str
    details: dict[str, Any]  # everything the controller reported


def _controller(experiment: Any) -> Any:
    evaluation = getattr(experiment, "evaluation", None)
    if evaluation is None:
        raise Unavailable("evaluation not available")
    return evaluation


def _status(data: Mapping[str, Any]) -> EvaluationStatus:
    metrics = {}
    for name, value in dict(data.get("metrics") or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            metrics[str(name)] = number
    return EvaluationStatus(state=str(data.get("state", "")), progress=float(data.get("progress", 0.0) or 0.0),
                            split=str(data.get("split", "") or ""), metrics=metrics,
                            message=str(data.get("message", "") or ""), id=str(data.get("id", "") or ""),
                            eval_fn=str(data.get("eval_fn", "") or ""), details=dict(data))


def _state(evaluation: Any) -> str:
    return str(evaluation.status().get("state", ""))


def start_evaluation(experiment: Any, request: StartEvaluationRequest, caller: Caller = SDK) -> EvaluationStatus:
    params = {"split": request.split or None, "eval_fn": request.eval_fn or None, "tags": list(request.tags) or None,
              "max_steps": request.max_steps, "resume_after": request.resume_after,
              "include_discarded": request.include_discarded or None, "batch_size": request.batch_size or None,
              "model": request.model or None}
    with audited(experiment, caller, "start_evaluation", params) as entry:
        text(request.split, "split")
        text(request.eval_fn, "eval_fn")
        text(request.model, "model")
        names(request.tags, "tags", max_items=MAX_TAGS)
        if request.max_steps is not None and request.max_steps < 1:
            raise InvalidRequest.of("max_steps", request.max_steps, "expected >= 1 (omit it for every batch)")
        if not 0 <= request.batch_size <= MAX_BATCH_SIZE:
            raise InvalidRequest.of("batch_size", request.batch_size,
                                    f"expected 0 (the loader's) or 1..{MAX_BATCH_SIZE}")
        evaluation = _controller(experiment)
        entry.before = _state(evaluation)
        status = _status(evaluation.start(
            request.split or None, tags=list(request.tags) or None, max_steps=request.max_steps,
            resume_after=request.resume_after, eval_fn=request.eval_fn or None,
            include_discarded=request.include_discarded, batch_size=request.batch_size or None,
            model=request.model or None))
        entry.after = status.state
    return status


def evaluation_status(experiment: Any) -> EvaluationStatus:
    return _status(_controller(experiment).status())


def cancel_evaluation(experiment: Any, caller: Caller = SDK) -> EvaluationStatus:
    with audited(experiment, caller, "cancel_evaluation") as entry:
        evaluation = _controller(experiment)
        entry.before = _state(evaluation)
        status = _status(evaluation.cancel())
        entry.after = status.state
    return status
