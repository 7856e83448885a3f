"""What one evaluation pass hands to an evaluation function: batches of the selected samples and
a context to record per-sample values and report metrics; and how the function is called and
its result read (see :mod:`weightslab.evaluation` for the calling convention)."""

from __future__ import annotations

import inspect
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from weightslab._torch import is_tensor

if TYPE_CHECKING:
    from weightslab.experiment import Experiment

log = logging.getLogger("weightslab.evaluation")


class PassControl(Protocol):
    """What the batches and the context ask the controller running the pass."""

    experiment: Experiment

    def _should_stop(self, p: _Pass) -> bool: ...

    def _batch_done(self, p: _Pass, n_samples: int, seconds: float) -> None: ...


class _Pass:
    """Mutable state of one pass; read by ``EvaluationController.status`` (under its lock)."""

    def __init__(self, *, split: str, tags: list[str], loader: Any, indices: np.ndarray, batch_size: int,
                 max_steps: int | None, resume_after: bool | None, evaluator: str,
                 fn: Callable[..., Any] | None, model_name: str | None) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.split = split
        self.tags = tags
        self.loader = loader
        self.indices = indices  # positions in loader.ids, in dataset order
        self.batch_size = batch_size
        n_batches = -(-len(indices) // batch_size)
        self.batches_total = min(n_batches, max_steps) if max_steps is not None else n_batches
        self.samples_total = min(len(indices), self.batches_total * batch_size)
        self.resume_after = resume_after
        self.evaluator = evaluator
        self.fn = fn
        self.model_name = model_name
        self.state = "running"
        self.message = "waiting for the training loop to reach its step boundary"
        self.started = time.time()
        self.finished: float | None = None
        self.batches_done = 0
        self.samples_done = 0
        self.metrics: dict[str, float] = {}
        self.timeout: float | None = None
        self.deadline: float | None = None  # time.monotonic()
        self.pass_started: float | None = None  # time.monotonic() when the lock was taken
        self.stop_reason: str | None = None  # "cancelled" | "timeout"
        self.cancel_event = threading.Event()
        self.step: int | None = None
        self.branch: str | None = None
        self.state_before: str | None = None
        self.state_after: str | None = None
        self.avg_batch_seconds: float | None = None
        self.thread: threading.Thread | None = None


class EvalBatches:
    """The selected samples as loader-shaped batches ``(inputs, sample_ids, targets, *rest)``.

    Iteration stops early (without error) once the pass is cancelled or timed out. It is
    re-iterable; progress counts every batch handed out.
    """

    def __init__(self, controller: PassControl, p: _Pass) -> None:
        self._controller = controller
        self._pass = p

    def __len__(self) -> int:
        return self._pass.batches_total

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        p = self._pass
        for b in range(p.batches_total):
            if self._controller._should_stop(p):
                return
            idx = [int(i) for i in p.indices[b * p.batch_size:(b + 1) * p.batch_size]]
            started = time.monotonic()
            batch = make_batch(p.loader, idx)
            yield batch
            self._controller._batch_done(p, len(idx), time.monotonic() - started)


class EvalContext:
    """What a user evaluation function receives."""

    def __init__(self, controller: PassControl, p: _Pass) -> None:
        exp = controller.experiment
        self._controller = controller
        self._pass = p
        self.experiment = exp
        self.split = p.split
        self.tags = list(p.tags)
        self.loader = p.loader
        self.batches = EvalBatches(controller, p)
        self.models = dict(exp.models)
        self.model = exp.models.get(p.model_name) if p.model_name is not None else None
        self.step = exp.step
        self.branch = exp.branch
        self.batch_size = p.batch_size
        self.rows = np.asarray(p.loader.rows)[p.indices[: p.samples_total]].astype(np.int64)
        self.sample_ids = [str(p.loader.ids[i]) for i in p.indices[: p.samples_total].tolist()]
        self.metrics: dict[str, float] = {}

    def should_stop(self) -> bool:
        """True once the pass was cancelled or ran past its timeout: return soon."""
        return self._controller._should_stop(self._pass)

    def record(self, name: str, values: Any, batch_ids: Any, *, preds: Any = None, targets: Any = None,
               logits: Any = None) -> None:
        """Record per-sample values of ``name`` for ``batch_ids`` of the evaluated split (no curve point:
        the pass mean goes on the curve through :meth:`report` or the returned metrics)."""
        self.experiment.record(name, values, batch_ids, split=self.split, preds=preds, targets=targets,
                               logits=logits, log_curve=False)

    def report(self, **metrics: float) -> None:
        """Add pass-level metrics (merged with what the function returns)."""
        for name, value in metrics.items():
            self.metrics[str(name)] = float(value)


def make_batch(loader: Any, idx: list[int]) -> tuple[Any, ...]:
    """Build the batch of dataset positions ``idx`` exactly as the watched loader would yield it."""
    ids = loader._ids_out(idx)
    if loader._numpy:
        sel = np.asarray(idx)
        parts = tuple(p[sel] for p in loader._parts)
        batch: Any = parts if len(parts) > 1 else parts[0]
        plain_list = False
    elif loader._torch_loader is not None:
        collate = getattr(loader._torch_loader.collate_fn, "collate_fn", None)
        if collate is None:
            from torch.utils.data.dataloader import default_collate

            collate = default_collate
        batch = collate([loader.dataset[i] for i in idx])
        plain_list = False
    else:
        batch = [loader.dataset[i] for i in idx]
        plain_list = True
    if isinstance(batch, (tuple, list)) and len(batch) >= 2 and not plain_list:
        return (batch[0], ids, batch[1], *batch[2:])
    if isinstance(batch, (tuple, list)) and len(batch) == 1:
        return (batch[0], ids, None)
    return (batch, ids, None)


EVAL_FN_FORMS = (
    "fn(ctx) -- one parameter, an EvalContext: `for inputs, sample_ids, targets, *rest in ctx.batches`, "
    "ctx.model, ctx.record(name, values, sample_ids), ctx.report(metric=value); or "
    "fn(batches, model) -- batches first, then the model: `for inputs, sample_ids, targets, *rest in batches`. "
    "Return {metric: number}, a number or None")
_MODEL_NAMES = frozenset({"model", "net", "network", "module", "classifier"})
_DATA_NAMES = frozenset({"loader", "data_loader", "dataloader", "batches", "data", "dataset", "ctx", "context"})


def _required_positional(fn: Callable[..., Any]) -> tuple[list[inspect.Parameter], inspect.Signature] | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or extension without a signature: called as fn(ctx)
        return None
    return [p for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty], sig


def check_eval_fn(fn: Any, name: str | None = None) -> None:
    """Refuse, at registration, an evaluation function the pass could not call as documented.

    Raises ``TypeError`` naming the function, its signature and the accepted forms
    (:data:`EVAL_FN_FORMS`), instead of a confusing error in the middle of a pass.
    """
    label = name or getattr(fn, "__name__", type(fn).__name__)
    if not callable(fn):
        raise TypeError(f"@wl.eval_fn {label}: expected a function, got {type(fn).__name__}. "
                        f"Accepted forms: {EVAL_FN_FORMS}")
    found = _required_positional(fn)
    if found is None:
        return
    required, sig = found
    params = sig.parameters.values()
    names = [p.name.lower() for p in required]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    keyword_only = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    problem = None
    if keyword_only:
        problem = f"keyword-only parameter(s) without a default ({', '.join(keyword_only)}) are never passed"
    elif len(required) > 2:
        problem = f"{len(required)} required parameters; the pass passes one (ctx) or two (batches, model)"
    elif not required and not positional and not takes_varargs:
        problem = "no parameter: the pass passes the context (ctx) or (batches, model)"
    elif len(required) == 1 and names[0] in _MODEL_NAMES:
        problem = (f"the one parameter {required[0].name!r} looks like the model, but a one-parameter function "
                   "receives the EvalContext (use ctx.model and ctx.batches)")
    elif len(required) == 2 and names[0] in _MODEL_NAMES and names[1] in _DATA_NAMES:
        problem = f"parameters in the wrong order ({required[0].name}, {required[1].name}): the batches come first"
    if problem is not None:
        raise TypeError(f"@wl.eval_fn {label}{sig}: {problem}. Accepted forms: {EVAL_FN_FORMS}")


def _call_eval_fn(fn: Callable[..., Any], ctx: EvalContext) -> Any:
    found = _required_positional(fn)
    if found is not None and len(found[0]) >= 2:
        return fn(ctx.batches, ctx.model)
    return fn(ctx)


def _metric_name(name: str) -> str:
    return name if name.startswith("eval") else f"eval_{name}"


def _as_float(value: Any) -> float | None:
    if is_tensor(value):
        value = value.detach().cpu()
        if value.numel() != 1:
            return None
        return float(value.item())
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return None
