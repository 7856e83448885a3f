"""The evaluation controller: starts, reports on and cancels passes (one at a time), with timeouts."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from weightslab._torch import torch_or_none

from .context import EvalContext, _as_float, _call_eval_fn, _metric_name, _Pass
from .default import default_evaluator
from .errors import EvaluationBusy, EvaluationError

if TYPE_CHECKING:
    from weightslab.experiment import Experiment

log = logging.getLogger("weightslab.evaluation")

STATES = ("idle", "running", "done", "cancelled", "timeout", "error")
DEFAULT_EVALUATOR = "default"


# -- timeout -------------------------------------------------------------------------------
def _setting(settings: Any, name: str, default: float) -> float:
    if settings is None:
        return default
    value = settings.get(name, default) if isinstance(settings, Mapping) else getattr(settings, name, default)
    return float(value)


def compute_timeout(settings: Any, avg_batch_seconds: float | None, nb_batches: int) -> float | None:
    """Timeout in seconds of a pass of ``nb_batches`` batches.

    ``settings`` is the ``evaluation`` settings section (or a mapping) with
    ``timeout_multiplier``, ``timeout_min_seconds`` and ``timeout_seconds``. Returns ``None``
    when the formula applies but ``avg_batch_seconds`` is not known yet.
    """
    override = _setting(settings, "timeout_seconds", 0.0)
    if override > 0:
        return override
    if avg_batch_seconds is None or not math.isfinite(avg_batch_seconds):
        return None
    multiplier = _setting(settings, "timeout_multiplier", 1.3)
    floor = _setting(settings, "timeout_min_seconds", 5.0)
    return max(floor, float(avg_batch_seconds) * max(int(nb_batches), 0) * multiplier)


# -- the controller ------------------------------------------------------------------------
class EvaluationController:
    """Starts, reports on and cancels evaluation passes of one experiment.

    ``boundary_wait``: seconds to wait for the training loop to block at its step boundary
    before taking the main lock (default: derived from the recent step times; 0 when the
    loop looks idle). A training step inside ``wl.guard_training_context`` holds the main
    lock, so it always finishes before the pass starts. ``lock_timeout``: the pass fails
    (state ``error``) when the main lock stays held longer; ``deadlock_seconds``: it fails
    sooner when the lock stays held while the loop is blocked at its boundary.
    """

    def __init__(self, experiment: Experiment, *, boundary_wait: float | None = None,
                 lock_timeout: float = 120.0, deadlock_seconds: float = 5.0, lock_poll: float = 0.05) -> None:
        self.experiment = experiment
        self.boundary_wait = boundary_wait
        self.lock_timeout = lock_timeout
        self.deadlock_seconds = deadlock_seconds
        self.loss_fn: Callable[..., Any] | None = None  # explicit per-sample loss for the default evaluator
        self._lock = threading.Lock()
        self._lock_poll = lock_poll
        self._pass: _Pass | None = None

    # -- public API ---------------------------------------------------------
    def start(self, split: str | None = None, *, tags: str | Sequence[str] | None = None,
              max_steps: int | None = None, resume_after: bool | None = None, eval_fn: str | None = None,
              include_discarded: bool = False, batch_size: int | None = None,
              model: str | None = None) -> dict[str, Any]:
        """Start a pass in a background thread; returns :meth:`status` right away.

        ``split``: a watched loader name (default: the first non-training loader, else the
        only loader). ``tags``: evaluate only samples having ALL these tags (``name`` for a
        boolean tag, ``name=value`` for a categorical one). ``max_steps``: at most this many
        batches. ``resume_after``: ``None`` keeps the training state found (running/paused),
        ``True`` resumes training after the pass, ``False`` leaves it paused. ``eval_fn``: name
        of a registered ``@wl.eval_fn`` or ``"default"`` (default: the function registered
        under the split's name, else the first registered one, else the default evaluator).
        Bad arguments raise ``ValueError`` naming the field; a running pass raises
        :class:`EvaluationBusy`.
        """
        exp = self.experiment
        if split is not None and (not isinstance(split, str) or not split):
            raise ValueError(f"split={split!r}: expected a split (loader) name")
        split = split or self._default_split()
        loader = exp.loaders.get(split)
        if loader is None:
            known = ", ".join(sorted(exp.loaders)) or "none watched"
            raise ValueError(f"split={split!r}: unknown split; known splits: {known}")
        tag_list = _tag_list(tags)
        if max_steps is not None and (not isinstance(max_steps, int) or isinstance(max_steps, bool)
                                      or max_steps < 1):
            raise ValueError(f"max_steps={max_steps!r}: expected a positive integer or None")
        if resume_after is not None and not isinstance(resume_after, bool):
            raise ValueError(f"resume_after={resume_after!r}: expected true, false or None")
        if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool)
                                       or batch_size < 1):
            raise ValueError(f"batch_size={batch_size!r}: expected a positive integer or None")
        if model is not None and model not in exp.models:
            raise ValueError(f"model={model!r}: unknown model; watched models: {', '.join(exp.models) or 'none'}")
        evaluator, fn = self._pick_evaluator(eval_fn, split)
        model_name = model or (next(iter(exp.models)) if exp.models else None)
        if fn is None and model_name is None:
            raise EvaluationError("the default evaluator needs a watched model (wl.watch_or_edit(model, "
                                  "flag='model')) or register an evaluation function with @wl.eval_fn")
        indices = self._select(loader, split, tag_list, include_discarded)
        with self._lock:
            if self._pass is not None and self._pass.state == "running":
                raise EvaluationBusy(f"an evaluation pass over {self._pass.split!r} is already running "
                                     f"(id {self._pass.id}); cancel it or wait for it to finish")
            p = _Pass(split=split, tags=tag_list, loader=loader, indices=indices,
                      batch_size=batch_size or int(loader.batch_size), max_steps=max_steps,
                      resume_after=resume_after, evaluator=evaluator, fn=fn, model_name=model_name)
            self._pass = p
            p.thread = threading.Thread(target=self._run, args=(p,), name="weightslab-eval", daemon=True)
            p.thread.start()
        return self.status()

    def status(self) -> dict[str, Any]:
        """``state`` (idle|running|done|cancelled|timeout|error), split, progress, metrics, message."""
        with self._lock:
            p = self._pass
            if p is None:
                return {"state": "idle", "progress": 0.0, "metrics": {}, "result": {}, "message": ""}
            total = p.batches_total
            return {
                "id": p.id, "state": p.state, "split": p.split, "tags": list(p.tags), "eval_fn": p.evaluator,
                "progress": (p.batches_done / total) if total else 1.0,
                "batches_done": p.batches_done, "batches_total": total,
                "samples_done": p.samples_done, "samples_total": p.samples_total,
                "started": p.started, "finished": p.finished,
                "elapsed_seconds": (p.finished or time.time()) - p.started,
                "timeout_seconds": p.timeout, "avg_batch_seconds": p.avg_batch_seconds,
                "metrics": dict(p.metrics), "result": dict(p.metrics), "message": p.message,
                "step": p.step, "branch": p.branch,
                "training_state_before": p.state_before, "training_state_after": p.state_after,
            }

    def cancel(self) -> dict[str, Any]:
        """Ask the running pass to stop at the next batch; idempotent. Returns :meth:`status`."""
        with self._lock:
            p = self._pass
            if p is not None and p.state == "running":
                p.cancel_event.set()
                if p.stop_reason is None:
                    p.stop_reason = "cancelled"
        return self.status()

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until the current pass ends (or ``timeout``); returns :meth:`status`."""
        with self._lock:
            p = self._pass
        thread = p.thread if p is not None else None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return self.status()

    def evaluate(self, split: str | None = None, *, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """Synchronous pass: :meth:`start` then :meth:`wait` (not from a thread holding the main lock)."""
        if self.experiment.lock.held_by_current_thread():
            raise EvaluationError("evaluate() called while holding the main lock (inside a training step): "
                                  "use start() and let the step finish")
        self.start(split, **kwargs)
        return self.wait(timeout)

    # -- selection ----------------------------------------------------------
    def _default_split(self) -> str:
        loaders = self.experiment.loaders
        for name, loader in loaders.items():
            if not loader.is_training:
                return str(name)
        if len(loaders) == 1:
            return str(next(iter(loaders)))
        raise ValueError("split: no split given and no evaluation (non-training) loader is watched")

    def _select(self, loader: Any, split: str, tags: list[str], include_discarded: bool) -> np.ndarray:
        exp = self.experiment
        with exp.data_lock:
            table = exp.table
            rows = np.asarray(loader.rows, dtype=np.int64)
            keep = np.ones(len(rows), dtype=bool) if include_discarded else ~table.discarded[rows]
            for tag in tags:
                if "=" in tag:
                    name, value = tag.split("=", 1)
                    col = table.categories.get(name)
                    if col is None:
                        raise ValueError(f"tags: unknown categorical tag {name!r}; known: "
                                         f"{', '.join(sorted(table.categories)) or 'none'}")
                    keep &= np.asarray([v == value for v in col[rows].tolist()], dtype=bool)
                else:
                    col = table.tags.get(tag)
                    if col is None:
                        raise ValueError(f"tags: unknown tag {tag!r}; known tags: "
                                         f"{', '.join(sorted(table.tags)) or 'none'}")
                    keep &= col[rows]
        indices = np.flatnonzero(keep)
        if len(indices) == 0:
            if tags:
                raise ValueError(f"tags={tags!r}: no {'' if include_discarded else 'active '}sample of split "
                                 f"{split!r} has all these tags")
            raise ValueError(f"split={split!r}: no active sample to evaluate")
        return indices

    def _pick_evaluator(self, name: str | None, split: str) -> tuple[str, Callable[..., Any] | None]:
        fns = self.experiment.eval_fns
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ValueError(f"eval_fn={name!r}: expected the name of a registered evaluation function")
            if name == DEFAULT_EVALUATOR:
                return DEFAULT_EVALUATOR, None
            if name not in fns:
                raise ValueError(f"eval_fn={name!r}: unknown evaluation function; registered: "
                                 f"{', '.join([DEFAULT_EVALUATOR, *fns])}")
            return name, fns[name]
        if split in fns:
            return split, fns[split]
        if fns:
            first = next(iter(fns))
            return first, fns[first]
        return DEFAULT_EVALUATOR, None

    # -- running ------------------------------------------------------------
    def _should_stop(self, p: _Pass) -> bool:
        if p.cancel_event.is_set():
            return True
        if p.deadline is not None and time.monotonic() > p.deadline:
            with self._lock:
                if p.stop_reason is None:
                    p.stop_reason = "timeout"
            return True
        return False

    def _batch_done(self, p: _Pass, n_samples: int, seconds: float) -> None:
        with self._lock:
            p.batches_done += 1
            p.samples_done += n_samples
            if p.timeout is None and p.pass_started is not None:  # no training step timed: first batch
                p.avg_batch_seconds = seconds
                p.timeout = compute_timeout(self._settings(), seconds, p.batches_total)
                if p.timeout is not None:
                    p.deadline = p.pass_started + p.timeout

    def _settings(self) -> Any:
        try:
            return self.experiment.config["evaluation"]
        except (KeyError, TypeError):
            return None

    def _training_batch_seconds(self, p: _Pass) -> float | None:
        """Mean recent training step time, scaled to the evaluation batch size."""
        exp = self.experiment
        times = list(getattr(exp, "_step_times", []) or [])[-20:]
        if not times:
            return None
        per_step = float(np.mean(times))
        train_bs = None
        for loader in exp.loaders.values():
            if loader.is_training:
                train_bs = int(loader.batch_size)
                break
        if train_bs:
            return per_step * p.batch_size / train_bs
        return per_step

    def _boundary_budget(self) -> float:
        if self.boundary_wait is not None:
            return max(0.0, float(self.boundary_wait))
        exp = self.experiment
        last = getattr(exp, "_last_step_end", None)
        if last is None:
            return 0.0  # the loop never stepped: nothing to wait for
        times = list(getattr(exp, "_step_times", []) or [])[-20:]
        typical = float(np.median(times)) if times else 0.1
        if time.monotonic() - last > max(2.0, 10 * typical):
            return 0.0  # the loop looks idle (finished, or between phases)
        return min(30.0, max(0.5, 3 * typical))

    def _wait_for_boundary(self, p: _Pass) -> None:
        control = self.experiment.control
        if control.waiting:
            return
        deadline = time.monotonic() + self._boundary_budget()
        while not p.cancel_event.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if control.wait_until(lambda c: c.waiting, min(self._lock_poll, remaining)):
                return

    def _acquire(self, p: _Pass) -> bool:
        """Take the main lock; False when cancelled first. Raises :class:`EvaluationError` when the
        lock stays held past ``lock_timeout``, or while the loop is blocked at its boundary (a loop
        holding the lock across its boundary would deadlock with the pass)."""
        lock = self.experiment.lock
        control = self.experiment.control
        start = time.monotonic()
        blocked_since: float | None = None
        while not p.cancel_event.is_set():
            if lock.acquire(timeout=self._lock_poll):
                return True
            now = time.monotonic()
            holder = lock.holder()
            if control.waiting and holder is not None:
                blocked_since = blocked_since if blocked_since is not None else now
                if now - blocked_since > self.deadlock_seconds:
                    raise EvaluationError(
                        f"the main lock is held by {holder.thread_name} while the training loop waits at its "
                        "step boundary: the loop holds wl.guard_training_context across its batches (wrap "
                        "each step instead); evaluation not started")
            else:
                blocked_since = None
            if now - start > self.lock_timeout:
                who = f" (held by {holder.thread_name})" if holder is not None else ""
                raise EvaluationError(f"the main lock was not acquired within {self.lock_timeout:g}s{who}")
        return False

    def _run(self, p: _Pass) -> None:
        exp = self.experiment
        control = exp.control
        lock = exp.lock
        ident = threading.get_ident()
        state_before = control.state.value
        with self._lock:
            p.state_before = state_before
        acquired = False
        outcome: tuple[str, str, Mapping[str, float] | None] = ("error", "the pass did not finish", None)
        lock.exempt_threads.add(ident)  # exempt before it can become the holder
        control.set_evaluating(True)
        try:
            self._wait_for_boundary(p)
            acquired = self._acquire(p)
            if not acquired:
                outcome = ("cancelled", "cancelled before the pass started", None)
                return
            with self._lock:
                p.message = "evaluating"
                p.step, p.branch = exp.step, exp.branch
                p.pass_started = time.monotonic()
                p.avg_batch_seconds = self._training_batch_seconds(p)
                p.timeout = compute_timeout(self._settings(), p.avg_batch_seconds, p.batches_total)
                if p.timeout is not None:
                    p.deadline = p.pass_started + p.timeout
            exp.current_split = p.split  # thread-local: records from this thread default to the split
            snapshot = _Snapshot(exp.models.values())
            try:
                metrics = self._evaluate(p)
            finally:
                snapshot.restore()
            exp.recorder.drain()
            reason = p.stop_reason
            if reason is None and p.cancel_event.is_set():
                reason = "cancelled"
            progress = f"{p.batches_done}/{p.batches_total} batches"
            if reason is None:
                self._publish(p, metrics)
                outcome = ("done", f"evaluated {p.samples_done} samples in {p.batches_done} batches", metrics)
            elif reason == "timeout":
                outcome = ("timeout", f"stopped by the {p.timeout:.3g}s timeout after {progress}", metrics)
            else:
                outcome = ("cancelled", f"cancelled after {progress}", metrics)
        except Exception as exc:
            log.exception("evaluation pass over %r failed", p.split)
            outcome = ("error", f"{type(exc).__name__}: {exc}", None)
        finally:
            if acquired:
                lock.release()
            lock.exempt_threads.discard(ident)
            control.set_evaluating(False)
            if p.resume_after is True and control.state.value == "paused":
                control.resume()
            elif p.resume_after is False and control.state.value == "running":
                control.pause()
            # last: a new pass may start once the state is no longer "running"
            final_state, message, final_metrics = outcome
            self._finish(p, final_state, message, final_metrics, state_after=control.state.value)

    def _finish(self, p: _Pass, state: str, message: str, metrics: Mapping[str, float] | None,
                state_after: str) -> None:
        with self._lock:
            if metrics:
                p.metrics = dict(metrics)
            p.state_after = state_after
            p.message = message
            p.finished = time.time()
            p.state = state
        log.info("evaluation pass %s over %r: %s (%s)", p.id, p.split, state, message)

    def _evaluate(self, p: _Pass) -> dict[str, float]:
        ctx = EvalContext(self, p)
        if p.fn is None:
            out: Any = default_evaluator(ctx, self.loss_fn)
        else:
            out = _call_eval_fn(p.fn, ctx)
        metrics: dict[str, float] = {}
        for name, value in ctx.metrics.items():
            metrics[_metric_name(name)] = value
        if isinstance(out, Mapping):
            for name, value in out.items():
                number = _as_float(value)
                if number is not None:
                    metrics[_metric_name(str(name))] = number
        elif out is not None:
            number = _as_float(out)
            if number is None:
                raise TypeError(f"evaluation function {p.evaluator!r} returned {type(out).__name__}: expected "
                                "a mapping of metrics, a number or None")
            metrics["eval_score"] = number
        return metrics

    def _publish(self, p: _Pass, metrics: Mapping[str, float]) -> None:
        """One curve point per metric at the current step, and an evaluation marker."""
        exp = self.experiment
        step, branch = int(exp.step), str(exp.branch)
        for name, value in metrics.items():
            if math.isfinite(value):
                exp.history.append_curve(name, p.split, branch, step, value)
                try:
                    exp.store.append_curve(name, p.split, branch, step, value)
                except Exception:
                    log.exception("storing evaluation curve point %r failed", name)
        exp.history.markers.append({
            "kind": "evaluation", "id": p.id, "step": step, "split": p.split, "branch": branch,
            "metrics": dict(metrics), "tags": list(p.tags), "eval_fn": p.evaluator,
            "samples": p.samples_done, "batches": p.batches_done, "time": time.time(),
        })


class _Snapshot:
    """Train/eval mode of every module and the RNG states, restored after the pass."""

    def __init__(self, models: Any) -> None:
        self.modes: list[tuple[Any, bool]] = []
        for model in models:
            modules = model.modules() if hasattr(model, "modules") else []
            self.modes.extend((m, bool(m.training)) for m in modules)
        self.py_state = random.getstate()
        self.np_state = np.random.get_state()
        torch = torch_or_none()
        self.torch_state = torch.get_rng_state() if torch is not None else None
        self.cuda_state = None
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            self.cuda_state = torch.cuda.get_rng_state_all()

    def restore(self) -> None:
        for module, training in self.modes:
            module.training = training  # per module: a model with frozen parts keeps them frozen
        random.setstate(self.py_state)
        np.random.set_state(self.np_state)
        torch = torch_or_none()
        if torch is not None and self.torch_state is not None:
            torch.set_rng_state(self.torch_state)
            if self.cuda_state is not None:
                torch.cuda.set_rng_state_all(self.cuda_state)


def _tag_list(tags: str | Sequence[str] | None) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, Sequence) or not all(isinstance(t, str) and t.strip() for t in tags):
        raise ValueError(f"tags={tags!r}: expected a list of tag names")
    return [t.strip() for t in tags]


def attach(experiment: Experiment, **kwargs: Any) -> EvaluationController:
    """Create the controller and set ``experiment.evaluation`` (used by the API layer)."""
    controller = EvaluationController(experiment, **kwargs)
    experiment.evaluation = controller
    return controller
