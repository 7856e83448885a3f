"""Server interceptors owned by this package."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from weightslab.audit import AuditLog

log = logging.getLogger("weightslab.grpc")

_DENIED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


class AuthOutcomeAuditInterceptor(grpc.ServerInterceptor):
    """Audits calls that end ``UNAUTHENTICATED``/``PERMISSION_DENIED`` (outcome ``denied``).

    Used (outermost) only when no installed interceptor offers
    ``add_auth_failure_listener`` (weightslab-auth's token interceptor does): it observes the
    status any inner auth interceptor sets, whatever plugin it comes from.
    """

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    def _check(self, method: str, context: grpc.ServicerContext) -> None:
        try:
            code = context.code()
        except Exception:
            return
        if code in _DENIED:
            from weightslab_grpc_server.servicer import caller_of

            details = ""
            try:
                raw = context.details() or ""
                details = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            except Exception:
                pass
            self.audit.record("auth_failure", params={"method": method}, outcome="denied",
                              error=details or code.name, caller=caller_of(context))

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                          handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method

        def unary_response(behavior: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    return behavior(request, context)
                finally:
                    self._check(method, context)

            return wrapped

        def stream_response(behavior: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    yield from behavior(request, context)
                finally:
                    self._check(method, context)

            return wrapped

        if handler.unary_unary is not None:
            return handler._replace(unary_unary=unary_response(handler.unary_unary))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=unary_response(handler.stream_unary))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=stream_response(handler.unary_stream))
        if handler.stream_stream is not None:
            return handler._replace(stream_stream=stream_response(handler.stream_stream))
        return handler
