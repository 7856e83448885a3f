"""Hook implementations of weightslab-grpc-server.

grpc is imported only inside ``weightslab_serve``, after GRPC_VERBOSITY has been applied.
"""

from __future__ import annotations

import logging
from typing import Any

from weightslab.hookspecs import hookimpl

log = logging.getLogger("weightslab.grpc")


@hookimpl
def weightslab_config_sections() -> list[Any]:
    from weightslab_grpc_server.settings import GrpcServerSettings

    return [GrpcServerSettings]


@hookimpl(tryfirst=True)
def weightslab_configure(config: Any) -> None:
    """Export GRPC_VERBOSITY from .env/kwarg/config before other plugins' validation imports grpc."""
    from weightslab_grpc_server.verbosity import apply_grpc_verbosity

    apply_grpc_verbosity(config, warn=False, only_from_files=True)


@hookimpl(tryfirst=True)
def weightslab_serve(experiment: Any, config: Any) -> Any:
    """Start the gRPC server when ``wl.serve(serving_grpc=True)``; publish it in ``services["grpc"]``."""
    if not experiment.serve_options.get("grpc"):
        return None
    existing = experiment.services.get("grpc")
    if existing is not None and getattr(existing, "running", False):
        return existing
    from weightslab_grpc_server.verbosity import apply_grpc_verbosity

    apply_grpc_verbosity(config)
    from weightslab_grpc_server.server import GrpcServerHandle

    handle = GrpcServerHandle(experiment, config)
    handle.start()  # raises GrpcBindError naming GRPC_BACKEND_HOST/PORT
    experiment.services["grpc"] = handle
    return handle


@hookimpl
def weightslab_shutdown(experiment: Any) -> None:
    handle = experiment.services.get("grpc")
    stop = getattr(handle, "stop", None)
    if callable(stop):
        stop()
