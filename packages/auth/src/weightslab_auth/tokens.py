"""Token authentication for the gRPC backend: server interceptor and caller identity.

Tokens are compared in constant time and never logged; only
:func:`weightslab.config.fingerprint` of a presented token ever leaves this module.

Public methods: ``/grpc.health.v1.Health/`` is callable without a token so that probes
(Envoy, load balancers, orchestrators) work; it reveals only a serving status and still sits
behind TLS/mTLS. Server reflection is NOT public: it discloses the whole API surface.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc
from weightslab.config import fingerprint
from weightslab.security import TOKEN_HEADERS as TOKEN_HEADERS  # re-exported: one implementation, in core
from weightslab.security import TokenSet as TokenSet
from weightslab.security import caller_identity as caller_identity
from weightslab.security import presented_tokens as presented_tokens

from weightslab_auth.settings import configured_tokens as configured_tokens  # re-exported

log = logging.getLogger("weightslab.auth")

PUBLIC_METHOD_PREFIXES: tuple[str, ...] = ("/grpc.health.v1.Health/",)

AuthFailureCallback = Callable[[str, str, str | None], None]
"""``on_auth_failure(method, peer, token_fingerprint_or_None)``; ``None`` means no token was sent."""


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Rejects every call without a valid token with ``UNAUTHENTICATED`` (unary and streaming).

    Place it first (outermost) among the server interceptors. A rejected call never reaches the
    inner interceptors or the handler: a generic denying handler answers it, so unknown methods
    also get ``UNAUTHENTICATED`` (no method enumeration without a token).
    """

    def __init__(self, tokens: Iterable[str], *, on_auth_failure: AuthFailureCallback | None = None,
                 public_prefixes: Sequence[str] = PUBLIC_METHOD_PREFIXES) -> None:
        self._tokens = TokenSet(tokens)
        if not self._tokens:
            raise ValueError("TokenAuthInterceptor needs at least one non-empty token")
        self._public = tuple(public_prefixes)
        self._listeners: list[AuthFailureCallback] = [on_auth_failure] if on_auth_failure else []

    def add_auth_failure_listener(self, callback: AuthFailureCallback) -> None:
        """Also call ``callback(method, peer, token_fingerprint_or_None)`` on every rejection (audit)."""
        self._listeners.append(callback)

    def is_authorized(self, metadata: Iterable[tuple[str, Any]] | None) -> bool:
        return any(self._tokens.matches(token) for token in presented_tokens(metadata))

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                          handler_call_details: grpc.HandlerCallDetails) -> Any:
        method: str = handler_call_details.method
        metadata = handler_call_details.invocation_metadata
        if method.startswith(self._public) or self.is_authorized(metadata):
            return continuation(handler_call_details)
        presented = presented_tokens(metadata)
        token_fp = fingerprint(presented[0]) if presented else None

        def deny(_requests: Any, context: grpc.ServicerContext) -> Any:
            self._rejected(method, context.peer(), token_fp)
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid auth token")

        # A stream-stream handler never reads a request, so it answers every call shape,
        # never deserializes untrusted bytes, and needs no inner handler (no side effects there).
        return grpc.stream_stream_rpc_method_handler(deny)

    def _rejected(self, method: str, peer: str, token_fp: str | None) -> None:
        reason = "no token" if token_fp is None else f"invalid token (fingerprint {token_fp})"
        log.warning("unauthenticated call to %s from %s: %s", method, peer, reason)
        for callback in self._listeners:
            try:
                callback(method, peer, token_fp)
            except Exception:  # an audit failure must not turn a rejection into a crash
                log.exception("auth failure callback %r failed", callback)
