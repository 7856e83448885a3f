"""Check a hyperparameter edit against the watched optimizers and loaders before it is queued.

An edit is applied at the next step boundary, in the training thread: a value the optimizer
or the loader refuses there would otherwise surface in the training loop. These checks ask
the objects themselves (an optimizer is built once with the new value on a one-element
tensor; a loader's batch-size rules) while the request is still in the caller's hands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from weightslab.hyperparams import HyperParameterError, shown

if TYPE_CHECKING:
    from weightslab.experiment import Experiment

LR_KEYS = ("lr", "learning_rate")
# Options that tie an optimizer to a device or a code path: off for the probe (a CPU tensor).
_PROBE_OFF = {"fused": None, "foreach": None, "capturable": False, "differentiable": False}


def batch_size_loaders(experiment: Experiment, key: str) -> list[tuple[str, Any]]:
    """The loaders an edit of ``key`` (``batch_size``, ``data.batch_size``, ``<loader>.batch_size``)
    resizes: the same selection as ``Experiment._apply_hyperparameter``."""
    prefix = key.rsplit(".", 1)[0] if "." in key else ""
    return [(name, loader) for name, loader in experiment.loaders.items()
            if prefix in ("", "data", name) and (prefix == name or loader.is_training)]


def check_training_objects(experiment: Experiment, key: str, value: Any) -> None:
    """Raise :class:`HyperParameterError` when a watched optimizer or loader would refuse ``value``."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf in LR_KEYS and value is not None:
        for name, optimizer in list(experiment.optimizers.items()):
            _check_optimizer(key, value, name, optimizer)
    elif leaf == "batch_size" and value is not None:
        for name, loader in batch_size_loaders(experiment, key):
            _check_loader(experiment, key, value, name, loader)


def _check_optimizer(key: str, value: Any, name: str, optimizer: Any) -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover - optimizers are torch objects
        return
    if not isinstance(optimizer, torch.optim.Optimizer):
        return
    options = {**dict(getattr(optimizer, "defaults", {})), "lr": value}
    options.update({k: v for k, v in _PROBE_OFF.items() if k in options})
    try:
        type(optimizer)([torch.zeros(1, requires_grad=True)], **options)
    except ValueError as exc:  # torch optimizers report a bad option as ValueError
        raise HyperParameterError(f"{key}={shown(key, value)}: refused by optimizer {name!r} "
                                  f"({type(optimizer).__name__}: {exc})") from None
    except Exception:  # noqa: BLE001 - a constructor that needs more than its defaults: not checkable here
        return


def _check_loader(experiment: Experiment, key: str, value: Any, name: str, loader: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise HyperParameterError(f"{key}={shown(key, value)}: loader {name!r} needs an integer >= 1")
    if getattr(loader, "drop_last", False):
        rows = np.asarray(getattr(loader, "rows", []), dtype=np.int64)
        active = int((~experiment.table.discarded[rows]).sum()) if len(rows) else 0
        if value > active:
            raise HyperParameterError(
                f"{key}={value}: loader {name!r} drops its last incomplete batch and has {active} active "
                f"samples, so it would yield no batch; expected an integer from 1 to {active}")
