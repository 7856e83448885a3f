"""Hyperparameters: get (applied and requested; secret-named values as fingerprints) and set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from weightslab.operations._base import SDK, Caller, InvalidRequest, audited, text
from weightslab.secrets import is_secret_name, masked

MAX_KEY = 1024


@dataclass(frozen=True)
class HyperParameter:
    key: str  # dotted key path, e.g. "optimizer.lr"
    applied: Any  # the value the loop uses now (a fingerprint text for a secret-named key)
    requested: Any = None  # queued, applied at the next step boundary
    has_requested: bool = False
    secret: bool = False


@dataclass(frozen=True)
class HyperParametersResult:
    parameters: tuple[HyperParameter, ...]
    last_error: str  # last rejected edit of the live YAML file, if any

    def applied(self) -> dict[str, Any]:
        return {p.key: p.applied for p in self.parameters}

    def pending(self) -> dict[str, Any]:
        return {p.key: p.requested for p in self.parameters if p.has_requested}


@dataclass(frozen=True)
class SetHyperParameterRequest:
    key: str
    value: Any


@dataclass(frozen=True)
class SetHyperParameterResult:
    key: str
    previous: Any  # applied value when the request arrived (fingerprint when secret)
    requested: Any  # validated (type-coerced) value, applied at the next step


def _shown(key: str, value: Any) -> Any:
    return masked(value) if is_secret_name(key) else value


def get_hyperparameters(experiment: Any) -> HyperParametersResult:
    values = experiment.hyperparameters()
    applied = values.get("applied") or {}
    pending = values.get("pending") or {}
    params = tuple(HyperParameter(key=key, applied=_shown(key, applied.get(key)),
                                  requested=_shown(key, pending.get(key)), has_requested=key in pending,
                                  secret=is_secret_name(key))
                   for key in sorted(set(applied) | set(pending)))
    hp = getattr(experiment, "hp", None)
    return HyperParametersResult(parameters=params, last_error=str(getattr(hp, "last_error", None) or ""))


def set_hyperparameter(experiment: Any, request: SetHyperParameterRequest,
                       caller: Caller = SDK) -> SetHyperParameterResult:
    with audited(experiment, caller, "set_hyperparameter", {"key": request.key, "value": request.value}) as entry:
        key = text(request.key, "key", required=True, max_len=MAX_KEY)
        previous = (experiment.hyperparameters().get("applied") or {}).get(key)
        try:
            requested = experiment.set_hyperparameter(key, request.value)
        except (ValueError, KeyError) as exc:
            message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            field = "key" if "unknown hyperparameter" in message or "key=" in message else "value"
            raise InvalidRequest(field, message) from None
        entry.before, entry.after = previous, requested  # the audit log masks secret-named keys itself
    return SetHyperParameterResult(key=key, previous=_shown(key, previous), requested=_shown(key, requested))
