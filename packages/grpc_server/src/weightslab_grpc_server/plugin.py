"""Hook implementations of weightslab-grpc-server."""

from __future__ import annotations

from typing import Any

from weightslab.hookspecs import hookimpl


@hookimpl
def weightslab_config_sections() -> list[Any]:
    from weightslab_grpc_server.settings import GrpcServerSettings

    return [GrpcServerSettings]
