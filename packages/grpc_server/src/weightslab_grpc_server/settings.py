"""Settings owned by weightslab-grpc-server."""

from __future__ import annotations

from typing import Annotated

from weightslab.config import Setting, SettingsSection
from weightslab.config import fields as f


class GrpcServerSettings(SettingsSection):
    section = "grpc"
    owner = "weightslab-grpc-server"

    host: Annotated[str, Setting(
        "GRPC_BACKEND_HOST", f.host,
        "Host the gRPC server binds to. Loopback by default; a non-loopback host needs TLS with client "
        "certificates (mTLS) or a token, else start-up is refused (see GRPC_ALLOW_UNAUTHENTICATED_REMOTE).",
        kwarg="grpc_host", weakens=lambda host: not f.is_loopback_host(host, resolve=False))] = "127.0.0.1"
    port: Annotated[int, Setting("GRPC_BACKEND_PORT", f.port_or_zero, "Port the gRPC server listens on.",
                                 kwarg="grpc_port")] = 50051
    max_message_bytes: Annotated[int, Setting(
        "GRPC_MAX_MESSAGE_BYTES", f.positive_int, "Max send and receive message size.")] = 268435456
    max_concurrent_rpcs: Annotated[int | None, Setting(
        "GRPC_MAX_CONCURRENT_RPCS", f.positive_int,
        "Max RPCs handled at once (unset = worker thread count).")] = None
    verbosity: Annotated[str | None, Setting(
        "GRPC_VERBOSITY", f.choice("DEBUG", "INFO", "ERROR"),
        "gRPC C-core verbosity, applied before grpc is imported.")] = None
    allow_unauthenticated_remote: Annotated[bool, Setting(
        "GRPC_ALLOW_UNAUTHENTICATED_REMOTE", f.boolean,
        "DANGEROUS: `1` lets the gRPC server listen on a non-loopback GRPC_BACKEND_HOST with no way to "
        "authenticate callers (no token and no mTLS): anyone who reaches the port can read and change the "
        "experiment. Only for a network where every host is trusted; a loud WARNING is logged.",
        weakens=f.is_true)] = False
