"""What every operation shares: the caller, the errors, the lock timeout, the audit record.

A front end (SDK, CLI server, gRPC servicer, agent) builds a typed request, names itself in a
:class:`Caller` and maps the errors below to its wire format; nothing else differs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from weightslab.audit import Interaction, get_audit_log
from weightslab.lock import LockTimeout, try_acquire_rlock

DEFAULT_LOCK_TIMEOUT = 30.0
TRANSPORTS = ("sdk", "cli", "grpc", "agent")


class InvalidRequest(ValueError):
    """A request field the caller can fix; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field

    @classmethod
    def of(cls, field: str, value: Any, expected: str) -> InvalidRequest:
        """``field=value: expected`` (text values quoted)."""
        shown = repr(value) if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
        error = cls("", f"{field}={shown}: {expected}")
        error.field = field
        return error


class Unavailable(RuntimeError):
    """The capability is absent (no plugin, no loader) or not possible now (a pass running)."""


@dataclass(frozen=True)
class Caller:
    """Who asks: the transport plus what it knows of the peer (audit only, never trusted)."""

    transport: str = "sdk"
    identity: Mapping[str, Any] = field(default_factory=dict)

    def audit(self) -> dict[str, Any]:
        return {"transport": self.transport, **dict(self.identity)}


SDK = Caller("sdk")


def lock_timeout(experiment: Any) -> float:
    """Seconds any front end waits for the main lock: ``WL_LOCK_TIMEOUT_SECONDS`` (default 30),
    capped by the watchdog's stuck threshold when the watchdog is configured (waiting longer
    than the time after which the holder counts as stuck gains nothing)."""
    config = getattr(experiment, "config", None)
    timeout = DEFAULT_LOCK_TIMEOUT
    try:
        timeout = float(config["experiment"].lock_timeout_seconds)  # type: ignore[index]
    except (KeyError, TypeError, AttributeError, ValueError):
        pass
    try:
        if config is not None and "watchdog" in config:
            timeout = min(timeout, float(config["watchdog"].stuck_seconds))
    except (KeyError, TypeError, AttributeError, ValueError):
        pass
    return timeout


@contextmanager
def main_lock(experiment: Any) -> Iterator[None]:
    """The main lock with the one bounded wait (``LockTimeout`` when it is not free in time)."""
    with try_acquire_rlock(experiment.lock, lock_timeout(experiment)):
        yield


@contextmanager
def data_lock(experiment: Any) -> Iterator[None]:
    """The table lock (bounded wait). Never read history or drain the recorder inside."""
    lock = experiment.data_lock
    timeout = lock_timeout(experiment)
    if not lock.acquire(timeout=timeout):
        raise LockTimeout(f"data_lock not acquired within {timeout:g}s")
    try:
        yield
    finally:
        lock.release()


@contextmanager
def audited(experiment: Any, caller: Caller, action: str,
            params: Mapping[str, Any] | None = None) -> Iterator[Interaction]:
    """One audit record for a mutating operation, the same whatever the transport."""
    with get_audit_log(experiment).interaction(action, params=params, caller=caller.audit()) as entry:
        yield entry


def text(value: str | None, field: str, *, required: bool = False, max_len: int = 256) -> str:
    """A bounded, NUL-free text field (``None`` = empty)."""
    value = "" if value is None else value
    if not isinstance(value, str):
        raise InvalidRequest(field, f"expected text, got {type(value).__name__}")
    if required and not value.strip():
        raise InvalidRequest(field, "required")
    if len(value) > max_len:
        raise InvalidRequest(field, f"{len(value)} characters (at most {max_len})")
    if "\x00" in value:
        raise InvalidRequest(field, "contains a NUL character")
    return value


def names(values: Any, field: str, *, max_items: int, max_len: int = 256) -> tuple[str, ...]:
    items = tuple(values or ())
    if len(items) > max_items:
        raise InvalidRequest(field, f"{len(items)} entries (at most {max_items})")
    for i, value in enumerate(items):
        text(value, f"{field}[{i}]", required=True, max_len=max_len)
    return items
