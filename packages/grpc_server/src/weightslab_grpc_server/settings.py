"""Settings owned by weightslab-grpc-server."""

from __future__ import annotations

from typing import Annotated

from weightslab.config import Setting, SettingsSection
from weightslab.config import fields as f


class GrpcServerSettings(SettingsSection):
    section = "grpc"
    owner = "weightslab-grpc-server"

    host: Annotated[str, Setting("GRPC_BACKEND_HOST", f.host, "Host the gRPC server binds to.",
                                 kwarg="grpc_host")] = "0.0.0.0"
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
