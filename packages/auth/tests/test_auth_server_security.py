"""``weightslab_server_security``: the TLS context and tokens auth hands to other servers."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import pluggy
import pytest
from weightslab.config import ConfigError, resolve
from weightslab.security import ServerSecurity
from weightslab_auth.pki import PKIPaths


def _handshake(context: ssl.SSLContext, ca: str) -> str:
    """A real TLS handshake over a socket pair; returns the server certificate's common name."""
    server_sock, client_sock = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with context.wrap_socket(server_sock, server_side=True) as conn:
                conn.sendall(b"ok")
        except BaseException as exc:  # reported to the test thread below
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = ssl.create_default_context(cafile=ca)
    client.check_hostname = False  # a socket pair has no host name; the chain is still verified
    with client.wrap_socket(client_sock) as conn:
        assert conn.recv(2) == b"ok"
        cert = conn.getpeercert()
    thread.join(timeout=10)
    assert not errors, errors
    subject = dict(item for rdn in cert["subject"] for item in rdn)
    return str(subject["commonName"])


def test_tls_context_serves_the_backend_certificate(plugin_manager: pluggy.PluginManager, pki: PKIPaths,
                                                    make_config: Callable[..., Any]) -> None:
    config = make_config(GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_AUTH_TOKENS="first-token-0123456,second")
    security = plugin_manager.hook.weightslab_server_security(config=config)
    assert isinstance(security, ServerSecurity)
    assert security.ssl_context is not None and security.ssl_context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert security.cert_file == pki.backend_cert and security.ca_file == pki.ca_cert
    # GRPC_AUTH_TOKENS replaces the token file: it is not advertised (its token is not accepted)...
    assert security.token_file is None and security.require_client_auth
    assert len(security.tokens) == 2 and security.tokens.matches("second") and not security.tokens.matches("x")
    assert _handshake(security.ssl_context, str(pki.ca_cert))


def test_the_token_file_is_the_default_token_of_every_server(
        plugin_manager: pluggy.PluginManager, pki: PKIPaths, make_config: Callable[..., Any]) -> None:
    for tls in ("1", "0"):
        security = plugin_manager.hook.weightslab_server_security(
            config=make_config(GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_TLS_ENABLED=tls))
        assert security.token_file == pki.token
        assert len(security.tokens) == 1 and security.tokens.matches(pki.token.read_text().strip())
    # ...unless the variable holds the file's token (the demo exports it): then it is advertised.
    security = plugin_manager.hook.weightslab_server_security(
        config=make_config(GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_AUTH_TOKEN=pki.token.read_text().strip()))
    assert security.token_file == pki.token


def test_tls_off_gives_tokens_only(plugin_manager: pluggy.PluginManager, make_config: Callable[..., Any]) -> None:
    security = plugin_manager.hook.weightslab_server_security(
        config=make_config(GRPC_TLS_ENABLED="0", GRPC_AUTH_TOKEN="only-token-0123456"))
    assert security.ssl_context is None and security.ca_file is None
    assert security.tokens.matches("only-token-0123456")


def test_unusable_tls_files_name_the_variable(plugin_manager: pluggy.PluginManager, tmp_path: Any,
                                              make_config: Callable[..., Any]) -> None:
    with pytest.raises(ConfigError, match="GRPC_TLS_"):
        plugin_manager.hook.weightslab_server_security(config=make_config(GRPC_TLS_CERT_DIR=str(tmp_path)))


def test_no_auth_section_passes(plugin_manager: pluggy.PluginManager) -> None:
    # Without auth settings (plugin disabled at resolution) auth has nothing to say.
    assert plugin_manager.hook.weightslab_server_security(config=resolve([], environ={}, env_file=None)) is None
