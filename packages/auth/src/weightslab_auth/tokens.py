"""Token authentication for the gRPC backend: server interceptor and caller identity.

Tokens are compared in constant time and never logged; only
:func:`weightslab.config.fingerprint` of a presented token ever leaves this module.

Public methods: ``/grpc.health.v1.Health/`` is callable without a token so that probes
(Envoy, load balancers, orchestrators) work; it reveals only a serving status and still sits
behind TLS/mTLS. Server reflection is NOT public: it discloses the whole API surface.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc
from weightslab.config import fingerprint

from weightslab_auth.settings import configured_tokens as configured_tokens  # re-exported

log = logging.getLogger("weightslab.auth")

TOKEN_HEADERS = ("authorization", "x-api-key", "x-grpc-auth-token")
PUBLIC_METHOD_PREFIXES: tuple[str, ...] = ("/grpc.health.v1.Health/",)

AuthFailureCallback = Callable[[str, str, str | None], None]
"""``on_auth_failure(method, peer, token_fingerprint_or_None)``; ``None`` means no token was sent."""


def presented_tokens(metadata: Iterable[tuple[str, Any]] | None) -> list[str]:
    """Tokens a caller sent, from ``authorization: Bearer``, ``x-api-key`` or ``x-grpc-auth-token``."""
    found: list[str] = []
    for key, value in metadata or ():
        if not isinstance(value, str):  # binary (-bin) headers never carry a token
            continue
        name, value = key.lower(), value.strip()
        if name == "authorization":
            scheme, _, rest = value.partition(" ")
            value = rest.strip() if scheme.lower() == "bearer" else ""
        elif name not in TOKEN_HEADERS:
            continue
        if value:
            found.append(value)
    return found


class TokenSet:
    """Accepted tokens, held only as SHA-256 digests.

    Comparing fixed-size digests with ``hmac.compare_digest`` against *every* entry (no early
    exit) makes the check independent of token length and of which token matched.
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        self._digests = tuple(hashlib.sha256(t.encode()).digest() for t in dict.fromkeys(tokens) if t)

    def __len__(self) -> int:
        return len(self._digests)

    def matches(self, token: str) -> bool:
        digest = hashlib.sha256(token.encode()).digest()
        ok = False
        for valid in self._digests:
            ok |= hmac.compare_digest(digest, valid)
        return ok


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


def _first_property(auth_context: dict[str, list[bytes]], name: str) -> str | None:
    values = auth_context.get(name) or []
    return values[0].decode("utf-8", "replace") if values else None


def caller_identity(context: grpc.ServicerContext) -> dict[str, str | None]:
    """Who is calling, for audit: peer, client certificate subject/CN (mTLS), token fingerprint."""
    auth_context = context.auth_context() or {}
    presented = presented_tokens(context.invocation_metadata())
    return {
        "peer": context.peer(),
        "client_subject": _first_property(auth_context, "x509_subject"),
        "client_common_name": _first_property(auth_context, "x509_common_name"),
        "token_fingerprint": fingerprint(presented[0]) if presented else None,
    }
