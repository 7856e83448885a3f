"""Training control: pause, resume, run N optimizer steps then pause."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from weightslab.operations._base import SDK, Caller, InvalidRequest, audited

MAX_STEPS = 1_000_000_000


@dataclass(frozen=True)
class ResumeRequest:
    steps: int | None = None  # run exactly N optimizer steps, then pause


@dataclass(frozen=True)
class ControlResult:
    previous_state: str
    state: str
    step: int
    branch: str
    steps_left: int | None


def _result(experiment: Any, before: str) -> ControlResult:
    control = experiment.control
    return ControlResult(previous_state=before, state=control.state.value, step=int(experiment.step),
                         branch=str(experiment.branch), steps_left=control.steps_left)


def pause(experiment: Any, caller: Caller = SDK) -> ControlResult:
    with audited(experiment, caller, "pause") as entry:
        control = experiment.control
        before = control.state.value
        control.pause()
        result = _result(experiment, before)
        entry.before, entry.after = before, result.state
        entry.result = {"step": result.step}
    return result


def resume(experiment: Any, request: ResumeRequest = ResumeRequest(), caller: Caller = SDK) -> ControlResult:
    steps = request.steps
    with audited(experiment, caller, "resume", {"steps": steps}) as entry:
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                                  or not 1 <= steps <= MAX_STEPS):
            raise InvalidRequest.of("steps", steps, f"expected 1..{MAX_STEPS} (omit it to resume without a limit)")
        control = experiment.control
        before = control.state.value
        control.resume(steps)
        result = _result(experiment, before)
        entry.before, entry.after = before, result.state
        entry.result = {"step": result.step, "branch": result.branch}
    return result
