"""Watched losses/metrics and derived signals."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from weightslab.experiment import Experiment

log = logging.getLogger("weightslab.signals")


class WatchedSignal:
    """Calls the wrapped loss/metric unchanged; with ``batch_ids=`` it also records per-sample values.

    ``loss(outputs, targets, batch_ids=ids)`` returns exactly what ``loss(outputs, targets)``
    returns (use ``reduction='none'`` to get per-sample values). ``preds=`` and ``targets=``
    are optional; by default the first two positional arguments are taken as logits and
    targets for classification losses.
    """

    def __init__(self, experiment: Experiment, fn: Callable[..., Any], *, name: str, kind: str,
                 log_curve: bool = True, per_sample: bool = True, per_instance: bool = False) -> None:
        if not callable(fn):
            raise TypeError(f"flag={kind!r} expects a callable loss/metric, got {type(fn).__name__}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name={name!r}: expected a non-empty signal name")
        self.experiment = experiment
        self.fn = fn
        self.name = name
        self.kind = kind
        self.log_curve = log_curve
        self.per_sample = per_sample
        self.per_instance = per_instance
        self._warned_reduced = False

    def __getattr__(self, attr: str) -> Any:  # behave like the wrapped module (e.g. .reduction)
        return getattr(self.fn, attr)

    def __call__(self, *args: Any, batch_ids: Any = None, preds: Any = None, targets: Any = None,
                 split: str | None = None, annotation_ids: Any = None, **kwargs: Any) -> Any:
        out = self.fn(*args, **kwargs)
        if batch_ids is None:
            return out
        logits = args[0] if args and self.kind == "loss" else None
        if targets is None and len(args) >= 2:
            targets = args[1]
        self.experiment.record(
            self.name, out, batch_ids, split=split, preds=preds, targets=targets, logits=logits,
            log_curve=self.log_curve, per_sample=self.per_sample, per_instance=self.per_instance,
            annotation_ids=annotation_ids, is_loss=self.kind == "loss")
        return out


@dataclass
class SignalContext:
    """What a derived signal function receives."""

    name: str
    step: int
    split: str
    sample_ids: list[str]
    values: np.ndarray  # the subscribed signal's values for this batch
    subscribed: str
    subscribed_history: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # sample id -> (steps, values) of the subscribed signal, when include_history=True


@dataclass
class DerivedSignal:
    name: str
    fn: Callable[[SignalContext], Any]
    subscribe_to: str
    compute_every_n_steps: int = 1
    include_history: bool = False
    log: bool = True


def is_stateful_metric(obj: Any) -> bool:
    """A torchmetrics-style object: ``update(...)`` accumulates, ``compute()`` returns the value."""
    return callable(getattr(obj, "update", None)) and callable(getattr(obj, "compute", None))


class WatchedMetric:
    """A stateful metric kept working unchanged; what ``compute()`` returns becomes a curve point.

    ``update``, ``compute``, ``reset`` and calling the object behave exactly as on the wrapped
    metric (``metric(preds, target)`` is its own forward). With ``log_curve``, every
    ``compute()`` appends its value (a scalar, or each scalar entry of a dict as
    ``name/key``) to the curve ``name`` of the current split, at the current step.
    """

    def __init__(self, experiment: Experiment, metric: Any, *, name: str, log_curve: bool = True) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name={name!r}: expected a non-empty signal name")
        self.experiment = experiment
        self.metric = metric
        self.name = name
        self.kind = "metric"
        self.log_curve = log_curve

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.metric, attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.metric(*args, **kwargs)

    def update(self, *args: Any, **kwargs: Any) -> Any:
        return self.metric.update(*args, **kwargs)

    def reset(self) -> Any:
        return self.metric.reset()

    def compute(self) -> Any:
        value = self.metric.compute()
        if self.log_curve:
            self._log(self.name, value)
        return value

    def _log(self, name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                self._log(f"{name}/{key}", sub)
            return
        from weightslab._torch import to_numpy

        arr = np.asarray(to_numpy(value), dtype=np.float64)
        if arr.ndim != 0:
            self.experiment.warn_once(f"metric:{name}", "metric %r computed a %s value; only scalars become "
                                      "curve points", name, arr.shape)
            return
        self.experiment.record_curve_point(name, float(arr))
