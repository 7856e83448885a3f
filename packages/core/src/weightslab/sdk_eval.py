"""SDK: evaluations requested from outside (Studio, CLI) run from the training script's loop.

Passes already run in a background worker of the experiment; these functions let a script
that calls them at its own moments (the established idiom) wait for a requested pass where it
stands, so its loop does not race the pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from weightslab.sdk import get_experiment


def _register(loaders: Any, model: Any, eval_fn: Callable[..., Any] | None) -> None:
    experiment = get_experiment()
    if eval_fn is not None:
        from weightslab.evaluation.context import check_eval_fn

        check_eval_fn(eval_fn)
        experiment.eval_fns.setdefault(getattr(eval_fn, "__name__", "eval_fn"), eval_fn)
    if model is not None and model not in experiment.models.values():
        experiment.models.setdefault("model", model)
    if loaders is not None:
        values = loaders.values() if isinstance(loaders, Mapping) else (
            loaders if isinstance(loaders, (list, tuple)) else [loaders])
        watched = set(map(id, experiment.loaders.values()))
        strays = [type(ld).__name__ for ld in values if id(ld) not in watched]
        if strays:
            raise ValueError(f"loaders: {', '.join(strays)} not watched; pass loaders returned by "
                             "wl.watch_or_edit(dataset, flag='data')")


def run_pending_evaluation(loaders: Any = None, model: Any = None, eval_fn: Callable[..., Any] | None = None,
                           device: Any = None, timeout: float | None = None) -> bool:
    """Let a requested evaluation pass run to its end now; returns whether one ran.

    Called inside ``wl.guard_training_context`` it gives up the main lock while it waits (the
    pass needs it). ``device`` is accepted for the established form; the default evaluator
    moves batches to the model's own device.
    """
    del device
    _register(loaders, model, eval_fn)
    experiment = get_experiment()
    if experiment.evaluation.status()["state"] != "running":
        return False
    depth = experiment.lock.release_all() if experiment.lock.held_by_current_thread() else 0
    try:
        experiment.evaluation.wait(timeout)
    finally:
        if depth:
            experiment.lock.reacquire(depth)
    return True


def trigger_pending_evaluation_async() -> bool:
    """Whether a requested pass is running in the background worker (it needs no trigger here)."""
    return get_experiment().evaluation.status()["state"] == "running"
