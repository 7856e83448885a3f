"""Training control: running / paused / evaluating, pause at step boundaries, run N steps."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable


class TrainingState(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    EVALUATING = "evaluating"


class TrainingControl:
    """The training loop calls :meth:`step_boundary` before each step and :meth:`step_done` after.

    ``pause()`` takes effect at the next boundary; ``resume(steps=N)`` lets exactly N more
    optimizer steps run, then pauses again.
    """

    def __init__(self, on_resume: Callable[[], None] | None = None) -> None:
        self._cond = threading.Condition()
        self._paused = False
        self._evaluating = False
        self._budget: int | None = None  # steps left before an automatic pause
        self._on_resume = on_resume
        self.waiting = False  # the loop is blocked at a boundary right now
        self._closed = False  # the experiment shut down: never block again

    @property
    def state(self) -> TrainingState:
        with self._cond:
            if self._evaluating:
                return TrainingState.EVALUATING
            return TrainingState.PAUSED if self._paused else TrainingState.RUNNING

    @property
    def steps_left(self) -> int | None:
        return self._budget

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._budget = None
            self._cond.notify_all()

    def resume(self, steps: int | None = None) -> None:
        if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
            raise ValueError(f"steps={steps!r}: expected a positive integer or None")
        if self._on_resume is not None:
            self._on_resume()
        with self._cond:
            self._paused = False
            self._budget = steps
            self._cond.notify_all()

    def close(self) -> None:
        """Release a loop blocked at its boundary and never block again (experiment shut down)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def set_evaluating(self, value: bool) -> None:
        with self._cond:
            self._evaluating = value
            self._cond.notify_all()

    def step_done(self) -> None:
        """One optimizer step finished: spend the run-N budget."""
        with self._cond:
            if self._budget is not None:
                self._budget -= 1
                if self._budget <= 0:
                    self._budget = None
                    self._paused = True
                    self._cond.notify_all()

    def step_boundary(self, timeout: float | None = None) -> bool:
        """Block while paused or evaluating. Returns False if ``timeout`` expired while blocked."""
        with self._cond:
            if self._closed or not (self._paused or self._evaluating):
                return True
            self.waiting = True
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._closed or not (self._paused or self._evaluating),
                                           timeout)
            finally:
                self.waiting = False
                self._cond.notify_all()

    def wait_until(self, predicate: Callable[[TrainingControl], bool], timeout: float) -> bool:
        """Wait (for tests and clients) until ``predicate(self)`` holds."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)
