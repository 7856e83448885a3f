"""The default evaluator: used when no ``@wl.eval_fn`` is registered for the split."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from weightslab._torch import is_tensor, torch_or_none

from .context import EvalContext
from .errors import EvaluationError

log = logging.getLogger("weightslab.evaluation")


def find_loss(experiment: Any, split: str, loss_fn: Callable[..., Any] | None = None) -> Callable[..., Any] | None:
    """The loss the default evaluator uses: ``loss_fn``, else the watched loss of ``split``, else any."""
    if loss_fn is not None:
        return loss_fn
    losses: list[Any] = []
    for attr in ("signals", "watched_signals"):
        container = getattr(experiment, attr, None)
        if isinstance(container, Mapping):
            losses.extend(s for s in container.values() if getattr(s, "kind", None) == "loss")
    for signal in losses:
        if str(getattr(signal, "name", "")).startswith(split):
            return getattr(signal, "fn", signal)
    return getattr(losses[0], "fn", losses[0]) if losses else None


def default_evaluator(ctx: EvalContext, loss_fn: Callable[..., Any] | None = None) -> dict[str, float]:
    """Mean per-sample loss (the watched loss, else cross-entropy / MSE) and, for classification,
    accuracy over the selected samples; records ``eval_loss`` per sample."""
    torch = torch_or_none()
    model = ctx.model
    if torch is None or model is None:
        raise EvaluationError("the default evaluator needs torch and a watched model")
    loss_fn = find_loss(ctx.experiment, ctx.split, loss_fn)
    device = _model_device(model)
    loss_sum, loss_n, correct, acc_n = 0.0, 0, 0.0, 0
    model.train(False)  # eval mode
    with torch.no_grad():
        for inputs, ids, targets, *_ in ctx.batches:
            x = _to_device(inputs, device)
            out = _primary_output(model(x))
            y = _to_device(targets, device) if targets is not None else None
            losses = _per_sample_loss(torch, out, y, loss_fn)
            classification = (is_tensor(out) and out.ndim == 2 and y is not None and is_tensor(y)
                              and y.ndim == 1 and not y.is_floating_point() and len(y) == len(out))
            preds = out.argmax(dim=1) if classification else None
            if losses is not None:
                ctx.record("eval_loss", losses, ids, preds=preds, targets=y)
                finite = torch.isfinite(losses)
                loss_sum += float(losses[finite].sum())
                loss_n += int(finite.sum())
            if preds is not None and y is not None:
                correct += float((preds == y).sum())
                acc_n += len(y)
    metrics: dict[str, float] = {}
    if loss_n:
        metrics["eval_loss"] = loss_sum / loss_n
    if acc_n:
        metrics["eval_accuracy"] = correct / acc_n
    return metrics


def _model_device(model: Any) -> Any:
    for param in model.parameters():
        return param.device
    return None


def _to_device(value: Any, device: Any) -> Any:
    torch = torch_or_none()
    if torch is None:
        return value
    if isinstance(value, np.ndarray):
        value = torch.as_tensor(value)
    if is_tensor(value):
        return value.to(device) if device is not None else value
    if isinstance(value, (tuple, list)):
        return type(value)(_to_device(v, device) for v in value)
    if isinstance(value, Mapping):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


def _primary_output(out: Any) -> Any:
    if isinstance(out, Mapping):
        for key in ("logits", "output", "out"):
            if key in out:
                return out[key]
        return next(iter(out.values()))
    if isinstance(out, (tuple, list)) and out:
        return out[0]
    return out


def _per_sample_loss(torch: Any, out: Any, y: Any, loss_fn: Callable[..., Any] | None) -> Any:
    """Per-sample loss: the watched loss when it returns per-sample values, else CE / MSE."""
    if not is_tensor(out) or y is None or not is_tensor(y) or out.ndim == 0:
        return None
    n = out.shape[0]
    if loss_fn is not None:
        try:
            value = loss_fn(out, y)
        except Exception:
            log.warning("the watched loss failed on an evaluation batch; using the default loss", exc_info=True)
            value = None
        if is_tensor(value) and value.ndim >= 1 and value.shape[0] == n:
            return value.detach().reshape(n, -1).float().mean(dim=1)
    if out.ndim == 2 and y.ndim == 1 and not y.is_floating_point() and len(y) == n:
        return torch.nn.functional.cross_entropy(out.float(), y.long(), reduction="none")
    if out.shape == y.shape and y.is_floating_point():
        return ((out.float() - y.float()) ** 2).reshape(n, -1).mean(dim=1)
    return None
