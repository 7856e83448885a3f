"""TLS context and accepted tokens for servers on their own socket (the CLI server).

Implements ``weightslab_server_security``: the same ``GRPC_TLS_*`` files and
``GRPC_AUTH_TOKEN(S)`` the gRPC backend uses, so every server of an experiment is protected
alike and no other plugin needs to import this one. No grpc import here.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from weightslab.config import Config, ConfigError
from weightslab.security import ServerSecurity, TokenSet

from weightslab_auth.settings import configured_tokens, read_token_file, token_file_path
from weightslab_auth.tls import load_tls, resolve_tls_paths


def _accepted_token_file(config: Config, tokens: TokenSet) -> Path | None:
    """The cert dir's token file when it holds an accepted token (advertised to local clients by
    the discovery file); ``None`` when a token variable replaced it by another token."""
    path = token_file_path(config)
    try:
        token = read_token_file(path)
    except ConfigError:
        return None
    return path if token and tokens.matches(token) else None


def server_security(config: Config) -> ServerSecurity:
    """Tokens always; a fresh server-side TLS 1.2+ context when ``GRPC_TLS_ENABLED``.

    Raises :class:`~weightslab.config.ConfigError` naming the variable and path when a TLS
    file is unusable.
    """
    auth = config["auth"]
    tokens = TokenSet(configured_tokens(config))
    token_file = _accepted_token_file(config, tokens)
    if not auth.tls_enabled:
        return ServerSecurity(None, tokens, token_file=token_file)
    material = load_tls(config)
    assert material is not None  # TLS is enabled, so load_tls either returns material or raises
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(material.cert_file), str(material.key_file))
    ca = resolve_tls_paths(config).ca.path
    return ServerSecurity(context, tokens, cert_file=material.cert_file, ca_file=ca if ca.is_file() else None,
                          token_file=token_file, require_client_auth=bool(auth.require_client_auth))
