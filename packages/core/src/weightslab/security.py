"""Token and caller-identity primitives shared by every server (gRPC backend, CLI server).

One implementation for all transports: weightslab-auth resolves the configured tokens and TLS
files and hands them to other plugins through the ``weightslab_server_security`` hook as a
:class:`ServerSecurity`; nothing here reads settings or imports grpc. Tokens are compared in
constant time and never logged; only :func:`weightslab.config.fingerprint` of a token leaves.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import ssl

TOKEN_HEADERS = ("authorization", "x-api-key", "x-grpc-auth-token")


def _digest(token: str) -> bytes:
    # surrogatepass: a lone surrogate (possible from JSON) must not raise before the comparison
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenSet:
    """Accepted tokens, held only as SHA-256 digests.

    Comparing fixed-size digests with ``hmac.compare_digest`` against *every* entry (no early
    exit) makes the check independent of token length and of which token matched.
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        self._digests = tuple(_digest(t) for t in dict.fromkeys(tokens) if t)

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:  # the count only: never a token or a digest
        return f"TokenSet(<{len(self._digests)} tokens>)"

    def matches(self, token: str) -> bool:
        digest = _digest(token)
        ok = False
        for valid in self._digests:
            ok |= hmac.compare_digest(digest, valid)
        return ok


@dataclass(frozen=True)
class ServerSecurity:
    """What a plugin serving its own socket needs (returned by ``weightslab_server_security``).

    ``ssl_context`` is a fresh server-side context with the backend certificate loaded (``None``:
    TLS is off); the caller may tighten it (e.g. request client certificates) since nobody else
    holds it. ``ca_file`` and ``token_file`` are set only when the file exists.
    """

    ssl_context: ssl.SSLContext | None
    tokens: TokenSet
    cert_file: Path | None = None
    ca_file: Path | None = None
    token_file: Path | None = None
    require_client_auth: bool = False  # GRPC_TLS_REQUIRE_CLIENT_AUTH: clients must present a certificate

    @classmethod
    def insecure(cls) -> ServerSecurity:
        """No TLS and no token: what a server gets when no plugin provides security."""
        return cls(None, TokenSet(()))


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


class CallContext(Protocol):
    """The part of ``grpc.ServicerContext`` that :func:`caller_identity` reads."""

    def peer(self) -> str: ...

    def auth_context(self) -> Any: ...

    def invocation_metadata(self) -> Any: ...


def _first_property(auth_context: dict[str, list[bytes]], name: str) -> str | None:
    values = auth_context.get(name) or []
    return values[0].decode("utf-8", "replace") if values else None


def caller_identity(context: CallContext, tokens: TokenSet | None = None) -> dict[str, str | None]:
    """Who is calling, for audit: peer, client certificate subject/CN (mTLS), token fingerprint.

    With ``tokens`` (the server's accepted set) the fingerprint is that of the presented token
    that matched: a wrong token sent beside the right one is never recorded. An empty set (no
    token authentication) records no fingerprint; ``None`` (unknown) records the first presented.
    """
    from weightslab.config import fingerprint

    auth_context = context.auth_context() or {}
    presented = presented_tokens(context.invocation_metadata())
    if tokens is not None:
        presented = [t for t in presented if tokens.matches(t)]
    return {
        "peer": context.peer(),
        "client_subject": _first_property(auth_context, "x509_subject"),
        "client_common_name": _first_property(auth_context, "x509_common_name"),
        "token_fingerprint": fingerprint(presented[0]) if presented else None,
    }
