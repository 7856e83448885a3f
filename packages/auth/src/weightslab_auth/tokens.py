"""Token authentication for the gRPC backend: server interceptor and caller identity.

Tokens are compared in constant time and never logged. A rejected token is not even
fingerprinted: failures are reported as ``no token``/``invalid token`` only, through the
rate-limited :class:`~weightslab.auth_failures.AuthFailureAggregator`.

Public method: only ``/grpc.health.v1.Health/Check`` is callable without a token, so that
probes (Envoy, load balancers, orchestrators) work; it reveals only a serving status, holds no
worker thread and still sits behind TLS/mTLS. ``Health/Watch`` is a long-lived stream and needs
the token like every other method (an open ``Watch`` would let anyone hold server capacity).
Server reflection is NOT public: it discloses the whole API surface.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc
from weightslab.auth_failures import DEFAULT_INTERVAL_SECONDS, AuthFailureAggregator, FailureReport
from weightslab.security import TOKEN_HEADERS as TOKEN_HEADERS  # re-exported: one implementation, in core
from weightslab.security import TokenSet as TokenSet
from weightslab.security import caller_identity as caller_identity
from weightslab.security import presented_tokens as presented_tokens

from weightslab_auth.settings import configured_tokens as configured_tokens  # re-exported

log = logging.getLogger("weightslab.auth")

PUBLIC_METHODS: tuple[str, ...] = ("/grpc.health.v1.Health/Check",)

AuthFailureCallback = Callable[[FailureReport], None]
"""``on_auth_failure(report)``: the first failure of a host at once, then one summary per interval."""


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Rejects every call without a valid token with ``UNAUTHENTICATED`` (unary and streaming).

    Place it first (outermost) among the server interceptors. A rejected call never reaches the
    inner interceptors or the handler: a generic denying handler answers it, so unknown methods
    also get ``UNAUTHENTICATED`` (no method enumeration without a token).
    """

    def __init__(self, tokens: Iterable[str], *, on_auth_failure: AuthFailureCallback | None = None,
                 public_methods: Sequence[str] = PUBLIC_METHODS,
                 failure_interval: float | None = None) -> None:
        self._tokens = TokenSet(tokens)
        if not self._tokens:
            raise ValueError("TokenAuthInterceptor needs at least one non-empty token")
        self._public = frozenset(public_methods)
        self._listeners: list[AuthFailureCallback] = [on_auth_failure] if on_auth_failure else []
        self.failures = AuthFailureAggregator(
            self._report, transport="grpc",
            interval=DEFAULT_INTERVAL_SECONDS if failure_interval is None else failure_interval)

    def add_auth_failure_listener(self, callback: AuthFailureCallback) -> None:
        """Also call ``callback(report)`` for each (rate-limited) failure report (audit)."""
        self._listeners.append(callback)

    def stop(self) -> None:
        """Report the failures still being counted (the server is stopping)."""
        self.failures.stop()

    def is_authorized(self, metadata: Iterable[tuple[str, Any]] | None) -> bool:
        return any(self._tokens.matches(token) for token in presented_tokens(metadata))

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                          handler_call_details: grpc.HandlerCallDetails) -> Any:
        method: str = handler_call_details.method
        metadata = handler_call_details.invocation_metadata
        if method in self._public or self.is_authorized(metadata):
            return continuation(handler_call_details)
        reason = "invalid token" if presented_tokens(metadata) else "no token"

        def deny(_requests: Any, context: grpc.ServicerContext) -> Any:
            self.failures.failure(method, context.peer(), reason)
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid auth token")

        # A stream-stream handler never reads a request, so it answers every call shape,
        # never deserializes untrusted bytes, and needs no inner handler (no side effects there).
        return grpc.stream_stream_rpc_method_handler(deny)

    def _report(self, report: FailureReport) -> None:
        for callback in self._listeners:
            try:
                callback(report)
            except Exception:  # an audit failure must not turn a rejection into a crash
                log.exception("auth failure callback %r failed", callback)
