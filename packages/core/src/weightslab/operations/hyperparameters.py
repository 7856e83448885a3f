"""Hyperparameters: get (applied, requested and rejected; secret-named values as fingerprints) and set."""

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
class RejectedEdit:
    """An edit that passed validation but failed when applied at the step boundary: training
    went on with ``kept``."""

    key: str
    value: Any  # the refused value (a fingerprint text for a secret-named key)
    reason: str
    kept: Any  # the value in use instead


@dataclass(frozen=True)
class HyperParametersResult:
    parameters: tuple[HyperParameter, ...]
    last_error: str  # last rejected edit (live YAML file or apply time), if any
    rejected: tuple[RejectedEdit, ...] = ()

    def applied(self) -> dict[str, Any]:
        return {p.key: p.applied for p in self.parameters}

    def pending(self) -> dict[str, Any]:
        return {p.key: p.requested for p in self.parameters if p.has_requested}

    def rejected_edits(self) -> dict[str, dict[str, Any]]:
        return {r.key: {"value": r.value, "reason": r.reason, "kept": r.kept} for r in self.rejected}


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
    rejected = tuple(RejectedEdit(key=key, value=_shown(key, r.get("value")), reason=str(r.get("reason", "")),
                                  kept=_shown(key, r.get("kept")))
                     for key, r in sorted((values.get("rejected") or {}).items()))
    hp = getattr(experiment, "hp", None)
    return HyperParametersResult(parameters=params, last_error=str(getattr(hp, "last_error", None) or ""),
                                 rejected=rejected)


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
