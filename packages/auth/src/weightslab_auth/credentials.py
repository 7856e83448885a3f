"""gRPC server credentials from the validated TLS material (imports grpc: load lazily)."""

from __future__ import annotations

import logging

import grpc
from weightslab.config import Config

from weightslab_auth.tls import load_tls

log = logging.getLogger("weightslab.auth")


def server_credentials(config: Config) -> grpc.ServerCredentials | None:
    """``grpc.ssl_server_credentials`` for the backend socket, or ``None`` when TLS is off."""
    material = load_tls(config)
    if material is None:
        log.warning("!!! GRPC_TLS_ENABLED=0: the gRPC backend is serving WITHOUT TLS. Tokens and data "
                    "travel in clear text. Use this only for isolated local debugging. !!!")
        return None
    if not material.require_client_auth:
        log.warning("GRPC_TLS_REQUIRE_CLIENT_AUTH=0: clients are not asked for a certificate (no mTLS)")
    return grpc.ssl_server_credentials(
        [(material.private_key, material.certificate_chain)],
        root_certificates=material.root_certificates,
        require_client_auth=material.require_client_auth,
    )
