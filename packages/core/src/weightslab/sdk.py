"""The public SDK (``import weightslab as wl``), source-compatible with the established API."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from weightslab.experiment import Experiment
from weightslab.lock import LockInterrupt
from weightslab.lock import try_acquire_rlock as _try_acquire
from weightslab.log import WATCHDOG
from weightslab.signals import DerivedSignal, WatchedSignal

log = logging.getLogger("weightslab")

_lock = threading.Lock()
_experiment: Experiment | None = None

# flag -> canonical kind; aliases are exact names, never substrings.
FLAGS: dict[str, str] = {
    "model": "model",
    "optimizer": "optimizer", "opt": "optimizer",
    "loss": "loss", "metric": "metric", "signal": "signal",
    "data": "data", "dataset": "data",
    "hyperparameters": "hp", "hp": "hp",
}


def get_experiment(**kwargs: Any) -> Experiment:
    """The process-wide experiment, created (and started) on first use."""
    global _experiment
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    with _lock:
        if _experiment is None:
            _experiment = Experiment(kwargs=kwargs)
        elif kwargs.get("root_log_dir") is not None:
            _experiment.set_root_log_dir(kwargs["root_log_dir"])
        return _experiment


def reset_experiment() -> None:
    """Shut down and forget the process-wide experiment (tests, notebooks)."""
    global _experiment
    with _lock:
        exp, _experiment = _experiment, None
    if exp is not None:
        exp.shutdown()


def watch_or_edit(obj: Any, flag: str, **kw: Any) -> Any:
    """Watch a model, optimizer, loss/metric, dataset or hyperparameters.

    Returns the object to use in the training loop: the same model/optimizer/hp object,
    a :class:`~weightslab.signals.WatchedSignal` for losses/metrics, a
    :class:`~weightslab.data.WatchedLoader` for data.
    """
    kind = FLAGS.get(flag) if isinstance(flag, str) else None
    if kind is None:
        raise ValueError(f"flag={flag!r} is not a valid flag; valid flags: {', '.join(sorted(FLAGS))}")
    experiment = get_experiment(root_log_dir=kw.pop("root_log_dir", None))
    if kind not in ("model", "optimizer"):
        experiment.start()  # opens the store under the root log dir
    if kind == "model":
        return _watch_model(experiment, obj, **kw)
    if kind == "optimizer":
        return _watch_optimizer(experiment, obj, **kw)
    if kind in ("loss", "metric", "signal"):
        name = kw.pop("name", None) or kw.pop("signal_name", None) or getattr(obj, "__name__", None) \
            or type(obj).__name__.lower()
        signal = WatchedSignal(experiment, obj, name=name, kind=kind, log_curve=kw.pop("log", True),
                               per_sample=kw.pop("per_sample", True), per_instance=kw.pop("per_instance", False))
        _no_unknown(kw, flag)
        experiment.signals[name] = signal
        return signal
    if kind == "data":
        from weightslab.data import WatchedLoader

        loader = WatchedLoader(experiment, obj, **kw)
        experiment.loaders[loader.split] = loader
        return loader
    return _watch_hyperparameters(experiment, obj, **kw)


def _no_unknown(kw: Mapping[str, Any], flag: str) -> None:
    if kw:
        raise TypeError(f"unexpected keyword arguments for flag={flag!r}: {', '.join(sorted(kw))}")


def _watch_model(experiment: Experiment, model: Any, name: str = "model", **kw: Any) -> Any:
    _no_unknown(kw, "model")
    experiment.models[name] = model
    return model


def _watch_optimizer(experiment: Experiment, optimizer: Any, name: str = "optimizer", **kw: Any) -> Any:
    _no_unknown(kw, "optimizer")
    if not hasattr(optimizer, "param_groups"):
        raise TypeError(f"flag='optimizer' expects a torch optimizer, got {type(optimizer).__name__}")
    experiment.optimizers[name] = optimizer
    register = getattr(optimizer, "register_step_post_hook", None)
    if register is None:
        raise TypeError("flag='optimizer' needs torch>=2.0 (Optimizer.register_step_post_hook)")
    # A per-instance hook: nothing global in torch is patched.
    register(lambda *_args, **_kw: experiment.step_end())
    if experiment.hp is not None:  # an lr already requested applies to this optimizer too
        lr = experiment.hp.get("lr", experiment.hp.get("optimizer.lr"))
        if isinstance(lr, (int, float)):
            for group in optimizer.param_groups:
                group["lr"] = float(lr)
    return optimizer


def _watch_hyperparameters(experiment: Experiment, obj: Any, *, defaults: Mapping[str, Any] | None = None,
                           poll_interval: float = 1.0, name: str | None = None, **kw: Any) -> Any:
    import yaml

    from weightslab.hyperparams import HyperParameterError, HyperParameters

    _no_unknown(kw, "hyperparameters")
    values: dict[str, Any] = dict(defaults or {})
    if isinstance(obj, (str, Path)):
        path = Path(obj).expanduser()
        if path.exists():
            try:
                loaded = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise HyperParameterError(f"{path}: not valid YAML: {exc}") from None
            if not isinstance(loaded, Mapping):
                raise HyperParameterError(f"{path}: expected a mapping of hyperparameters")
            values.update(loaded)
        yaml_path = path
    elif isinstance(obj, Mapping):
        values.update(obj)
        yaml_path = experiment.root_log_dir / "hyperparameters.yaml"
    else:
        raise TypeError(f"flag='hp' expects a dict or a YAML path, got {type(obj).__name__}")
    hp = HyperParameters(values, yaml_path=yaml_path, poll_interval=poll_interval)
    experiment.register_hyperparameters(hp)
    return hp


def serve(serving_grpc: bool = False, serving_cli: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Start the requested services (gRPC server, CLI server, watchdog...) in daemon threads.

    Raises the service's error (e.g. a port already in use) instead of failing silently.
    """
    experiment = get_experiment(root_log_dir=kwargs.pop("root_log_dir", None))
    experiment.serve_options.update({"grpc": serving_grpc, "cli": serving_cli, **kwargs})
    experiment.reload_config(**kwargs)
    experiment.start()
    # Fail fast, before any service thread starts, on invalid settings (e.g. TLS files).
    experiment.pm.hook.weightslab_configure(config=experiment.config)
    started: list[Any] = []
    try:
        for handle in experiment.pm.hook.weightslab_serve(experiment=experiment, config=experiment.config):
            if handle is not None:
                started.append(handle)
    except BaseException:
        for handle in started:
            try:
                handle.stop()
            except Exception:
                log.exception("stopping a service after a failed start")
        raise
    if serving_grpc and "grpc" not in experiment.services:
        raise RuntimeError("serving_grpc=True but no gRPC server plugin is installed: "
                           "pip install 'weightslab[grpc]'")
    if serving_cli and "cli" not in experiment.services:
        raise RuntimeError("serving_cli=True but the CLI plugin is not installed: pip install 'weightslab[cli]'")
    return dict(experiment.services)


def keep_serving(timeout: float | None = None) -> None:
    """Block the calling thread while services run (until Ctrl+C or ``timeout``)."""
    stop = threading.Event()
    try:
        stop.wait(timeout)
    except KeyboardInterrupt:
        log.info("stopped by the user")


def signal(name: str | None = None, *, subscribe_to: str, compute_every_n_steps: int = 1,
           include_history: bool = False, log: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a derived per-sample signal computed from another signal."""
    if not isinstance(compute_every_n_steps, int) or compute_every_n_steps < 1:
        raise ValueError(f"compute_every_n_steps={compute_every_n_steps!r}: expected a positive integer")

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        get_experiment().derived.append(DerivedSignal(name or fn.__name__, fn, subscribe_to,
                                                      compute_every_n_steps, include_history, log))
        return fn

    return decorator


def save_signals(signals: Mapping[str, Any], batch_ids: Any, *, preds: Any = None, targets: Any = None,
                 split: str | None = None, log: bool = True) -> None:
    """Record arbitrary per-sample values, e.g. ``wl.save_signals({"iou": ious}, batch_ids=ids)``."""
    experiment = get_experiment()
    experiment.start()
    for name, values in signals.items():
        experiment.record(name, values, batch_ids, split=split, preds=preds, targets=targets, log_curve=log)
        preds = targets = None  # recorded once


def tag_samples(ids: Any = None, tag: str = "", *, query: Any = None, split: str | None = None,
                value: str | None = None, remove: bool = False) -> dict[str, Any]:
    """Tag samples (boolean tag, or categorical ``tag=value``); ``remove=True`` untags."""
    action = "set_category" if value is not None else ("untag" if remove else "tag")
    return get_experiment().edit(action, ids=ids, query=query, split=split, tag=tag, value=value)


def untag_samples(ids: Any = None, tag: str = "", *, query: Any = None, split: str | None = None) -> dict[str, Any]:
    return get_experiment().edit("untag", ids=ids, query=query, split=split, tag=tag)


def discard_samples(ids: Any = None, *, query: Any = None, split: str | None = None,
                    discard: bool = True) -> dict[str, Any]:
    """Discard samples: training skips them from the next batch on. ``discard=False`` restores."""
    return get_experiment().edit("discard" if discard else "restore", ids=ids, query=query, split=split)


def restore_samples(ids: Any = None, *, query: Any = None, split: str | None = None) -> dict[str, Any]:
    return get_experiment().edit("restore", ids=ids, query=query, split=split)


def dataframe() -> Any:
    from weightslab.export import to_dataframe

    return to_dataframe(get_experiment())


def write_dataframe(path: str | Path | None = None, format: str = "csv") -> Path:
    from weightslab.export import write_dataframe as _write

    return _write(get_experiment(), path, format)


def write_history(path: str | Path | None = None, format: str = "csv", signals: list[str] | None = None) -> Path:
    from weightslab.export import write_history as _write

    return _write(get_experiment(), path, format, signals)


def get_age() -> int:
    """Optimizer steps taken so far (not forward calls)."""
    return get_experiment().step


def pause() -> None:
    get_experiment().control.pause()


def resume(steps: int | None = None) -> None:
    """Resume training; ``steps=N`` runs exactly N more steps, then pauses again.

    A step is an ``optimizer.step()`` of a watched optimizer, or, without one, the exit of
    ``wl.guard_training_context``; a loop with neither never counts steps, so it never re-pauses.
    """
    get_experiment().control.resume(steps)


def start_training() -> None:
    get_experiment().control.resume()


def eval_fn(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Register the evaluation function used by user-triggered evaluation passes."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        get_experiment().eval_fns[name or func.__name__] = func
        return func

    return decorator(fn) if fn is not None else decorator


class _Guard:
    """``with wl.guard_training_context:`` (or called: ``with wl.guard_training_context():``).

    Training: waits at the step boundary while paused, holds the main lock for the step,
    and counts a step on exit when no optimizer is watched. Exceptions are never swallowed.
    """

    def __init__(self, training: bool) -> None:
        self.training = training
        self._local = threading.local()

    def __call__(self) -> _Guard:
        return self

    def __enter__(self) -> _Guard:
        experiment = get_experiment()
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        outermost = not stack  # a nested guard is part of the same step
        if self.training and outermost:
            experiment.step_boundary()
        grad = None
        if not self.training:
            from weightslab._torch import torch_or_none

            torch = torch_or_none()
            if torch is not None:
                grad = torch.no_grad()
        stack.append((experiment, experiment.current_split, grad))
        experiment.current_split = _guard_split(experiment, self.training)
        experiment.lock.acquire()
        if grad is not None:
            grad.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        stack = self._local.stack
        experiment, split, grad = stack.pop()  # the experiment entered (even if reset since)
        try:
            if grad is not None:
                grad.__exit__(exc_type, exc, tb)
        finally:
            experiment.lock.release()
            experiment.current_split = split
            if self.training and not stack and exc_type is None and not experiment.optimizers:
                experiment.step_end()
        if exc_type is not None and issubclass(exc_type, LockInterrupt):
            # The watchdog unwound a stuck step: drop that step and keep training.
            log.log(WATCHDOG, "a stuck step was interrupted by the watchdog; training continues")
            return True
        return False


def _guard_split(experiment: Experiment, training: bool) -> str:
    """The split a guard records into: the batch's own loader split when it matches the guard."""
    current = experiment.current_split
    loader = experiment.loaders.get(current)
    if loader is not None and bool(loader.is_training) == training:
        return current
    if training:
        for name, watched in experiment.loaders.items():
            if watched.is_training:
                return str(name)
        return "train"
    return _eval_split(experiment)


def _eval_split(experiment: Experiment) -> str:
    for name, loader in experiment.loaders.items():
        if not loader.is_training:
            return str(name)
    return "test"


guard_training_context = _Guard(training=True)
guard_testing_context = _Guard(training=False)


def __getattr__(name: str) -> Any:
    if name == "weightslab_rlock":
        return get_experiment().lock
    raise AttributeError(name)


@contextmanager
def try_acquire_rlock(timeout: float) -> Iterator[Any]:
    """Hold the main lock for the block or raise ``LockTimeout`` after ``timeout`` seconds."""
    with _try_acquire(get_experiment().lock, timeout) as held:
        yield held
