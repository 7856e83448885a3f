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
