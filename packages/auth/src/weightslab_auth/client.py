"""Client side of the backend's security: channel credentials and the token header.

Used by tests, the CLI and any Python client; Envoy does the same with its own config.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import grpc

PemSource = bytes | str | os.PathLike[str] | None
"""PEM bytes, or a path (``str`` is always a path) to a PEM file."""


def _pem(source: PemSource) -> bytes | None:
    if source is None or isinstance(source, bytes):
        return source
    return Path(source).expanduser().read_bytes()


def client_channel_credentials(ca: PemSource = None, cert: PemSource = None,
                               key: PemSource = None) -> grpc.ChannelCredentials:
    """TLS channel credentials: ``ca`` verifies the server; ``cert`` + ``key`` are the mTLS identity."""
    if (cert is None) != (key is None):
        raise ValueError("client certificate and key must be given together")
    return grpc.ssl_channel_credentials(root_certificates=_pem(ca), private_key=_pem(key),
                                        certificate_chain=_pem(cert))


def token_metadata(token: str, header: str = "authorization") -> tuple[tuple[str, str], ...]:
    """Call metadata carrying ``token`` in one of the accepted headers."""
    header = header.lower()
    if header == "authorization":
        return (("authorization", f"Bearer {token}"),)
    if header in ("x-api-key", "x-grpc-auth-token"):
        return ((header, token),)
    raise ValueError(f"unknown token header {header!r}: use authorization, x-api-key or x-grpc-auth-token")


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str | bytes]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: Any


class TokenClientInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                             grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the token header to every call of a channel (``grpc.intercept_channel``)."""

    def __init__(self, token: str, header: str = "authorization") -> None:
        self._metadata = token_metadata(token, header)

    def __repr__(self) -> str:  # never show the token
        return f"TokenClientInterceptor(header={self._metadata[0][0]!r})"

    def _details(self, details: Any) -> _CallDetails:
        metadata = list(details.metadata or ()) + list(self._metadata)
        return _CallDetails(details.method, details.timeout, metadata, details.credentials,
                            getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    def _call(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return self._call(continuation, client_call_details, request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return self._call(continuation, client_call_details, request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any,
                               request_iterator: Iterator[Any]) -> Any:
        return self._call(continuation, client_call_details, request_iterator)

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any,
                                request_iterator: Iterator[Any]) -> Any:
        return self._call(continuation, client_call_details, request_iterator)


def secure_channel(target: str, *, ca: PemSource = None, cert: PemSource = None, key: PemSource = None,
                   token: str | None = None, header: str = "authorization",
                   options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
    """A TLS (optionally mTLS) channel that sends ``token`` on every call when given."""
    channel = grpc.secure_channel(target, client_channel_credentials(ca, cert, key), options=list(options))
    return grpc.intercept_channel(channel, TokenClientInterceptor(token, header)) if token else channel
