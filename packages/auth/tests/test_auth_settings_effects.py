"""The explicit TLS file variables decide what a real server presents and accepts.

``GRPC_TLS_CERT_DIR`` holds one dev PKI; the explicit ``GRPC_TLS_KEY_FILE``/``GRPC_TLS_CERT_FILE``
or ``GRPC_TLS_CA_FILE`` name another one. A handshake that only the named files allow proves
the variable is what the server's credentials were built from (not the cert dir's defaults).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from weightslab_auth import plugin
from weightslab_auth.client import client_channel_credentials
from weightslab_auth.pki import PKIPaths

TIMEOUT = 10


def call(target: str, credentials: grpc.ChannelCredentials) -> bytes | grpc.StatusCode:
    with grpc.secure_channel(target, credentials) as channel:
        try:
            reply: bytes = channel.unary_unary("/wltest.Echo/Unary")(b"ping", timeout=TIMEOUT)
        except grpc.RpcError as err:
            return err.code()
    return reply


def test_env_key_and_cert_files_are_what_the_server_presents(
        pki: PKIPaths, other_pki: PKIPaths, make_config: Callable[..., Any], serve: Callable[..., str]) -> None:
    config = make_config(GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_TLS_KEY_FILE=str(other_pki.backend_key),
                         GRPC_TLS_CERT_FILE=str(other_pki.backend_cert), GRPC_TLS_REQUIRE_CLIENT_AUTH="0")
    target = serve(plugin.weightslab_grpc_server_credentials(config))
    assert call(target, client_channel_credentials(other_pki.ca_cert)) == b"ping"
    # a client trusting only the cert dir's CA rejects the server: its default files are not used
    assert call(target, client_channel_credentials(pki.ca_cert)) == grpc.StatusCode.UNAVAILABLE


def test_env_ca_file_decides_which_client_certificates_are_accepted(
        pki: PKIPaths, other_pki: PKIPaths, make_config: Callable[..., Any], serve: Callable[..., str]) -> None:
    config = make_config(GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_TLS_CA_FILE=str(other_pki.ca_cert))
    target = serve(plugin.weightslab_grpc_server_credentials(config))  # server pair: the cert dir's
    signed_by_named_ca = client_channel_credentials(pki.ca_cert, other_pki.envoy_client_cert,
                                                    other_pki.envoy_client_key)
    signed_by_dir_ca = client_channel_credentials(pki.ca_cert, pki.envoy_client_cert, pki.envoy_client_key)
    assert call(target, signed_by_named_ca) == b"ping"
    assert call(target, signed_by_dir_ca) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("require", ["1", "0"])
def test_require_client_auth_from_env_with_explicit_files(
        pki: PKIPaths, make_config: Callable[..., Any], serve: Callable[..., str], tmp_path: Any,
        require: str) -> None:
    """Explicit files only (the cert dir is empty): mTLS on/off decides if a certificate-less client gets in."""
    config = make_config(GRPC_TLS_CERT_DIR=str(tmp_path), GRPC_TLS_KEY_FILE=str(pki.backend_key),
                         GRPC_TLS_CERT_FILE=str(pki.backend_cert), GRPC_TLS_CA_FILE=str(pki.ca_cert),
                         GRPC_TLS_REQUIRE_CLIENT_AUTH=require)
    target = serve(plugin.weightslab_grpc_server_credentials(config))
    anonymous = call(target, client_channel_credentials(pki.ca_cert))
    assert anonymous == (grpc.StatusCode.UNAVAILABLE if require == "1" else b"ping")
    assert call(target, client_channel_credentials(pki.ca_cert, pki.envoy_client_cert,
                                                   pki.envoy_client_key)) == b"ping"
