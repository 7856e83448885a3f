"""Errors a handler raises to answer with a specific gRPC status (no grpc import needed)."""

from __future__ import annotations

from typing import Any


class RpcError(Exception):
    """Answer the current RPC with ``code`` (a ``grpc.StatusCode`` name) and ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.audit_message = message


def invalid(message: str) -> RpcError:
    return RpcError("INVALID_ARGUMENT", message)


def precondition(message: str) -> RpcError:
    return RpcError("FAILED_PRECONDITION", message)


def not_found(message: str) -> RpcError:
    return RpcError("NOT_FOUND", message)


def exception_text(exc: BaseException) -> str:
    """``str(exc)`` without KeyError's quoting."""
    if isinstance(exc, KeyError) and type(exc).__str__ is KeyError.__str__ and exc.args:
        first: Any = exc.args[0]
        return str(first)
    return str(exc) or type(exc).__name__


# -- the one mapping from exceptions to gRPC status codes ------------------------------------

_PRECONDITION_ERRORS: tuple[type[BaseException], ...] | None = None


def _precondition_errors() -> tuple[type[BaseException], ...]:
    """The core's "not now / not here" errors (no plugin, a pass already running, not paused)."""
    global _PRECONDITION_ERRORS
    if _PRECONDITION_ERRORS is None:
        from weightslab.checkpoints import TrainingNotPaused
        from weightslab.evaluation import EvaluationBusy, EvaluationError
        from weightslab.operations import Unavailable

        _PRECONDITION_ERRORS = (Unavailable, EvaluationBusy, EvaluationError, TrainingNotPaused)
    return _PRECONDITION_ERRORS


def classify(exc: BaseException) -> tuple[str, str]:
    """``(grpc.StatusCode name, message)`` of an exception; ``INTERNAL`` carries no details."""
    from weightslab.lock import LockTimeout

    if isinstance(exc, RpcError):
        return exc.code, exc.message
    if isinstance(exc, LockTimeout):
        return "RESOURCE_EXHAUSTED", f"experiment busy: {exc}; retry later"
    if isinstance(exc, _precondition_errors()):
        return "FAILED_PRECONDITION", exception_text(exc)
    if isinstance(exc, (ValueError, KeyError)):
        return "INVALID_ARGUMENT", exception_text(exc)
    if isinstance(exc, ConnectionError):
        return "UNAVAILABLE", exception_text(exc)
    if isinstance(exc, NotImplementedError):
        return "UNIMPLEMENTED", exception_text(exc)
    return "INTERNAL", f"internal error ({type(exc).__name__}); see the server log"
