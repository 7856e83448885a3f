"""A minimal gRPC-Web unary client (HTTP/1.1 over TLS), for the launcher's start-up probe, the
tests and the benchmarks: it speaks to Envoy exactly as a browser does (content-type
``application/grpc-web+proto``, length-prefixed frames, trailers in a final frame)."""

from __future__ import annotations

import http.client
import ssl
import struct
from dataclasses import dataclass, field
from urllib.parse import unquote

# grpc-status codes used by the launcher's messages
OK = 0
PERMISSION_DENIED = 7
UNAVAILABLE = 14
UNAUTHENTICATED = 16
TRAILER_FLAG = 0x80


@dataclass(frozen=True)
class GrpcWebReply:
    http_status: int
    status: int  # grpc-status (from the trailers frame, or the headers of a trailers-only reply)
    message: str
    messages: list[bytes] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


def frame(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


def parse_frames(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    """``(data messages, trailers)`` of a gRPC-Web response body."""
    messages: list[bytes] = []
    trailers: dict[str, str] = {}
    pos = 0
    while pos + 5 <= len(body):
        flags, length = body[pos], struct.unpack(">I", body[pos + 1:pos + 5])[0]
        chunk = body[pos + 5:pos + 5 + length]
        if len(chunk) != length:
            raise ValueError(f"truncated gRPC-Web frame: {len(chunk)} of {length} bytes")
        pos += 5 + length
        if flags & TRAILER_FLAG:
            for line in chunk.decode("utf-8", "replace").split("\r\n"):
                name, sep, value = line.partition(":")
                if sep:
                    trailers[name.strip().lower()] = value.strip()
        else:
            messages.append(chunk)
    return messages, trailers


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols(["http/1.1"])
    return context


def call(host: str, port: int, method_path: str, request: bytes = b"", *, token: str | None = None,
         context: ssl.SSLContext | None = None, timeout: float = 10.0,
         origin: str | None = None) -> GrpcWebReply:
    """One unary gRPC-Web call to ``https://host:port{method_path}`` (``request``: serialized protobuf)."""
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context or tls_context(None))
    headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1", "accept": "application/grpc-web+proto"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if origin is not None:
        headers["origin"] = origin
    try:
        conn.request("POST", method_path, body=frame(request), headers=headers)
        response = conn.getresponse()
        body = response.read()
        got = {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()
    messages, trailers = parse_frames(body) if got.get("content-type", "").startswith("application/grpc") \
        else ([], {})
    status_text = trailers.get("grpc-status", got.get("grpc-status"))
    message = unquote(trailers.get("grpc-message", got.get("grpc-message", "")))
    status = int(status_text) if status_text is not None else -1
    return GrpcWebReply(response.status, status, message, messages, got)
