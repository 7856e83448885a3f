"""The public SDK (``import weightslab as wl``), source-compatible with the established API."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from weightslab.experiment import Experiment
from weightslab.lock import LockInterrupt
from weightslab.lock import try_acquire_rlock as _try_acquire
from weightslab.log import WATCHDOG
from weightslab.signals import DerivedSignal, WatchedMetric, WatchedSignal, is_stateful_metric

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


def clear_all() -> None:
    """Forget every registered object: the next call starts a fresh experiment in this process."""
    reset_experiment()


def reset_experiment() -> None:
    """Shut down and forget the process-wide experiment (tests, notebooks)."""
    global _experiment
    with _lock:
        exp, _experiment = _experiment, None
    if exp is not None:
        exp.shutdown()


def watch_or_edit(obj: Any, obj_name: str | None = None, flag: str | None = None, **kw: Any) -> Any:
    """Watch a model, optimizer, loss/metric, dataset or hyperparameters.

    Returns the object to use in the training loop: the same model/optimizer/hp object
    (a model also gets ``model.get_age()``), a :class:`~weightslab.signals.WatchedSignal` for
    losses and per-sample metrics, a :class:`~weightslab.signals.WatchedMetric` for stateful
    metric objects (``update``/``compute``), a :class:`~weightslab.data.WatchedLoader` for data.
    ``obj_name`` (established form) names the object, like ``name=``.
    """
    if obj_name is not None and "name" not in kw and "signal_name" not in kw and "loader_name" not in kw:
        if FLAGS.get(flag or "") == "data":
            kw["loader_name"] = obj_name
        else:
            kw["name"] = obj_name
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
        if kind == "metric" and is_stateful_metric(obj):
            metric = WatchedMetric(experiment, obj, name=name, log_curve=kw.pop("log", True))
            kw.pop("per_sample", None)  # a stateful metric has one value per compute(), not per sample
            _no_unknown(kw, kind)
            experiment.signals[name] = metric
            return metric
        signal = WatchedSignal(experiment, obj, name=name, kind=kind, log_curve=kw.pop("log", True),
                               per_sample=kw.pop("per_sample", True), per_instance=kw.pop("per_instance", False))
        _no_unknown(kw, kind)
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


def _watch_model(experiment: Experiment, model: Any, name: str = "model", device: Any = None,
                 embeddings: bool | str = False, **kw: Any) -> Any:
    _no_unknown(kw, "model")
    if device is not None:
        to = getattr(model, "to", None)
        if not callable(to):
            raise TypeError(f"device={device!r}: the model ({type(model).__name__}) has no .to(device)")
        model = to(device)
    experiment.models[name] = model
    if getattr(model, "get_age", None) is None:
        # An attribute of this instance only (established scripts call model.get_age()); nothing global.
        object.__setattr__(model, "get_age", lambda: experiment.step)
    if embeddings is not False and embeddings is not None:
        from weightslab.embeddings import enable

        # opt-in: a forward pre-hook on one module (the last layer's input unless named)
        enable(experiment, model, embeddings)
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

    from weightslab.hyperparams import HyperParameterError, HyperParameters, load_yaml

    _no_unknown(kw, "hyperparameters")
    values: dict[str, Any] = dict(defaults or {})
    if isinstance(obj, (str, Path)):
        path = Path(obj).expanduser()
        if path.exists():
            try:
                loaded = load_yaml(path.read_text()) or {}  # lr: 1e-3 is a number
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
    if not experiment.is_main_rank:  # a distributed job: rank 0 serves the whole job
        experiment.start()  # configures logging: the line below reaches the console
        log.info("services run on rank 0 of the distributed job; this rank opens no port")
        return {}
    experiment.serve_options.update({"grpc": serving_grpc, "cli": serving_cli, **kwargs})
    experiment.reload_config(**kwargs)
    experiment.start()
    # Fail fast, before any service thread starts, on invalid settings (e.g. TLS files). Without a
    # network service requested (serve(serving_grpc=False, serving_cli=False)) there is nothing
    # to secure, so missing certificates are no error.
    if serving_grpc or serving_cli:
        experiment.pm.hook.weightslab_configure(config=experiment.config)
    # A failing plugin aborts the hook call and its results are lost, so what this call started
    # is found in ``experiment.services`` (every plugin publishes its handle there).
    before = dict(experiment.services)
    try:
        experiment.pm.hook.weightslab_serve(experiment=experiment, config=experiment.config)
    except BaseException:
        _stop_started_services(experiment, before)
        raise
    if serving_grpc and "grpc" not in experiment.services:
        raise RuntimeError("serving_grpc=True but no gRPC server plugin is installed: "
                           "pip install 'weightslab[grpc]'")
    if serving_cli and "cli" not in experiment.services:
        raise RuntimeError("serving_cli=True but the CLI plugin is not installed: pip install 'weightslab[cli]'")
    return dict(experiment.services)


def _stop_started_services(experiment: Any, before: Mapping[str, Any]) -> None:
    """Stop (newest first) and unpublish every service a failed ``serve`` call started."""
    for name, handle in reversed(list(experiment.services.items())):
        if before.get(name) is handle:
            continue
        experiment.services.pop(name, None)
        stop = getattr(handle, "stop", None)
        if callable(stop):
            try:
                stop()
            except Exception:
                log.exception("stopping service %s after a failed start", name)


def keep_serving(timeout: float | None = None, release_gpu: bool = True) -> None:
    """Block the calling thread while services run (until Ctrl+C or ``timeout``).

    ``release_gpu`` (default): return cached CUDA memory to the device first, so a finished
    run that keeps serving its data does not hold GPU memory it no longer uses.
    """
    if release_gpu:
        from weightslab._torch import torch_or_none

        torch = torch_or_none()
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
    stop = threading.Event()
    try:
        stop.wait(timeout)
    except KeyboardInterrupt:
        log.info("stopped by the user")


def signal(name: str | None = None, subscribe_to: str | None = None, compute_every_n_steps: int = 1, *,
           include_history: bool = False, log: bool = True, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """Register a custom per-sample signal.

    With ``subscribe_to="train_loss"`` it is *derived*: called with a
    :class:`~weightslab.signals.SignalContext` whenever that signal is recorded (every
    ``compute_every_n_steps`` steps). Without it, it is *static*: a function of one dataset item,
    run over a dataset by :func:`weightslab.compute_signals`.
    """
    if not isinstance(compute_every_n_steps, int) or compute_every_n_steps < 1:
        raise ValueError(f"compute_every_n_steps={compute_every_n_steps!r}: expected a positive integer")
    if kwargs:
        raise TypeError(f"unexpected keyword arguments for @wl.signal: {', '.join(sorted(kwargs))} "
                        "(accepted: name, subscribe_to, compute_every_n_steps, include_history, log)")

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if subscribe_to is None:
            get_experiment().static_signals[name or fn.__name__] = fn
        else:
            get_experiment().derived.append(DerivedSignal(name or fn.__name__, fn, subscribe_to,
                                                          compute_every_n_steps, include_history, log))
        return fn

    return decorator


def save_signals(signals: Mapping[str, Any], batch_ids: Any, preds_raw: Any = None, targets: Any = None,
                 preds: Any = None, step: int | None = None, log: bool = False, *,
                 split: str | None = None) -> None:
    """Record per-sample values of a batch, e.g. ``wl.save_signals({"iou": ious}, batch_ids=ids)``.

    ``preds_raw``: the model's raw outputs (``preds`` defaults to their argmax for 2-D class
    scores); ``step``: record at this step instead of the current one; ``log=True`` also adds
    each signal's batch mean to its curve. ``split`` defaults to the batch's loader split.
    """
    if not isinstance(signals, Mapping) or not signals:
        raise ValueError("signals: expected a non-empty mapping of signal name -> per-sample values")
    experiment = get_experiment()
    experiment.start()
    if preds is None and preds_raw is not None:
        preds = _argmax_classes(preds_raw)
    for name, values in signals.items():
        experiment.record(name, values, batch_ids, split=split, preds=preds, targets=targets, log_curve=log,
                          step=step)
        preds = targets = None  # recorded once


def _argmax_classes(preds_raw: Any) -> Any:
    """Predicted classes of 2-D class scores (``None`` for other shapes)."""
    shape = getattr(preds_raw, "shape", None)
    if shape is None or len(shape) != 2:
        return None
    if hasattr(preds_raw, "detach"):
        return preds_raw.argmax(1)
    return np.asarray(preds_raw).argmax(axis=1)


TAG_MODES = ("add", "remove", "set")


def tag_samples(sample_ids: Any = None, tag: str = "", mode: str = "add", *, ids: Any = None, query: Any = None,
                split: str | None = None, value: str | None = None, remove: bool = False) -> dict[str, Any]:
    """Tag samples by ids (``sample_ids`` or ``ids``) or by ``query``.

    ``mode``: ``"add"`` (default), ``"remove"`` (same as ``remove=True``) or ``"set"`` (the samples
    keep only this boolean tag: every other boolean tag is removed from them). ``value=`` sets a
    categorical tag ``tag=value`` instead. Idempotent; returns matched/changed counts.
    """
    if mode not in TAG_MODES:
        raise ValueError(f"mode={mode!r}: expected one of {', '.join(TAG_MODES)}")
    if sample_ids is not None and ids is not None:
        raise ValueError("give the ids once: sample_ids or ids, not both")
    ids = sample_ids if sample_ids is not None else ids
    experiment = get_experiment()
    if value is not None:
        if mode != "add" or remove:
            raise ValueError("value= sets a categorical tag: mode must be 'add' (use set_categorical_tag(ids, "
                             "name, None) to clear it)")
        return _edit(experiment, "set_category", ids, query, split, tag=tag, value=value)
    if mode == "set":
        return _set_only_tag(experiment, ids, query, split, tag)
    action = "untag" if remove or mode == "remove" else "tag"
    return _edit(experiment, action, ids, query, split, tag=tag)


def _edit(experiment: Experiment, action: str, ids: Any, query: Any, split: str | None, *, tag: str = "",
          value: str | None = None) -> dict[str, Any]:
    """An edit through the core operation every front end uses (same validation, lock, audit)."""
    from weightslab.operations.edits import EditRequest, edit_samples
    from weightslab.table import ids_to_list

    result = edit_samples(experiment, EditRequest(
        action=action, ids=None if ids is None else tuple(ids_to_list(ids)), query=query, split=split or "",
        tag=tag or "", value=value or ""))
    return {"matched": result.matched, "changed": result.changed, "sample_ids": list(result.sample_ids)}


def _set_only_tag(experiment: Experiment, ids: Any, query: Any, split: str | None, tag: str) -> dict[str, Any]:
    if not tag:
        raise ValueError("mode='set' needs a tag name")
    if not experiment.started:
        experiment.start()
    rows = experiment.resolve_rows(ids, split=split, query=query)  # validates before anything changes
    with experiment.lock:  # one step boundary sees all of it
        changed = 0
        for other in [t for t in experiment.table.tags if t != tag]:
            changed += experiment.edit("untag", rows=rows, tag=other)["changed"]
        result = experiment.edit("tag", rows=rows, tag=tag)
    result["changed"] += changed
    return result


def untag_samples(ids: Any = None, tag: str = "", *, query: Any = None, split: str | None = None) -> dict[str, Any]:
    return _edit(get_experiment(), "untag", ids, query, split, tag=tag)


def discard_samples(sample_ids: Any = None, discarded: bool = True, *, ids: Any = None, query: Any = None,
                    split: str | None = None, discard: bool | None = None) -> dict[str, Any]:
    """Discard samples: training skips them from the next batch on.

    ``discarded=False`` (established form) or ``discard=False`` restores them.
    """
    if sample_ids is not None and ids is not None:
        raise ValueError("give the ids once: sample_ids or ids, not both")
    ids = sample_ids if sample_ids is not None else ids
    flag = discarded if discard is None else discard
    if not isinstance(flag, bool):
        raise ValueError(f"discarded={flag!r}: expected True or False")
    return _edit(get_experiment(), "discard" if flag else "restore", ids, query, split)


def restore_samples(ids: Any = None, *, query: Any = None, split: str | None = None) -> dict[str, Any]:
    return _edit(get_experiment(), "restore", ids, query, split)


def dataframe() -> Any:
    from weightslab.export import to_dataframe

    return to_dataframe(get_experiment())


def write_dataframe(path: str | Path | None = None, format: str | None = None, columns: list[str] | None = None,
                    sample_id: Any = None, instance_id: Any = None) -> Path:
    """Export the sample table (``csv``, ``json`` or ``parquet``) under ``<root>/exports`` by default.

    ``format`` defaults to the path's suffix when it names one, else CSV.

    ``columns`` keeps those columns (plus ``split`` and ``sample_id``); ``sample_id`` keeps one
    sample; ``instance_id`` (with ``sample_id``) exports that instance's per-signal values.
    """
    from weightslab.export import write_dataframe as _write

    return _write(get_experiment(), path, format, columns=columns, sample_id=sample_id, instance_id=instance_id)


def write_history(path: str | Path | None = None, format: str | None = None, signals: list[str] | None = None, *,
                  type_of_history: str | None = None, graph_name: str | None = None,
                  experiment_hash: str | None = None, sample_id: Any = None, instance_id: Any = None) -> Path:
    """Export history under ``<root>/exports`` by default; returns the path.

    ``type_of_history``: ``"sample"`` (per-sample values, default) or ``"curve"`` (per-step means);
    ``graph_name`` (established) or ``signals`` pick signals; ``experiment_hash`` one branch;
    ``sample_id`` one sample; ``instance_id`` (with ``sample_id``) one instance's history.
    """
    from weightslab.export import write_history as _write

    if graph_name is not None:
        signals = [*(signals or []), graph_name]
    return _write(get_experiment(), path, format, signals, kind=type_of_history, branch=experiment_hash,
                  sample_id=sample_id, instance_id=instance_id)


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


def start_training(timeout: float | None = None) -> bool:
    """Let training run (resumes a paused experiment); returns whether it is running.

    With ``timeout``, waits at most that many seconds for the state to become ``running``
    (e.g. while an evaluation pass still holds the loop); it never blocks longer.
    """
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0):
        raise ValueError(f"timeout={timeout!r}: expected seconds >= 0 or None")
    from weightslab.control import TrainingState

    experiment = get_experiment()
    experiment.control.resume()
    deadline = time.monotonic() + (timeout or 0.0)
    while experiment.control.state is not TrainingState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.01)  # bounded by timeout: the caller asked to wait at most that long
    return experiment.control.state is TrainingState.RUNNING


def eval_fn(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Register the evaluation function used by user-triggered evaluation passes.

    Accepted forms: ``fn(ctx)`` (an :class:`~weightslab.evaluation.EvalContext`: ``ctx.batches``,
    ``ctx.model``, ``ctx.record``, ``ctx.report``) or ``fn(batches, model)``; any other signature
    is refused here with a ``TypeError`` naming them.
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        from weightslab.evaluation.context import check_eval_fn

        check_eval_fn(func, name)  # a wrong signature fails here, naming the accepted forms
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
        if exc is not None and self.training and experiment.coordinator is not None:
            died = experiment.coordinator.step_failed(exc)  # e.g. DDP's all-reduce saw a rank die
            if died is not None:
                raise died from exc
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
