"""TLS context and accepted tokens for servers on their own socket (the CLI server).

Implements ``weightslab_server_security``: the same ``GRPC_TLS_*`` files and
``GRPC_AUTH_TOKEN(S)`` the gRPC backend uses, so every server of an experiment is protected
alike and no other plugin needs to import this one. No grpc import here.
"""

from __future__ import annotations

import ssl

from weightslab.config import Config
from weightslab.security import ServerSecurity, TokenSet

from weightslab_auth.settings import configured_tokens, token_file_path
from weightslab_auth.tls import load_tls, resolve_tls_paths


def server_security(config: Config) -> ServerSecurity:
    """Tokens always; a fresh server-side TLS 1.2+ context when ``GRPC_TLS_ENABLED``.

    Raises :class:`~weightslab.config.ConfigError` naming the variable and path when a TLS
    file is unusable.
    """
    auth = config["auth"]
    tokens = TokenSet(configured_tokens(config))
    # Advertised to local clients (discovery) only when it holds the accepted token, i.e. when
    # no token variable replaces it.
    token_file = None if (auth.auth_token or auth.auth_tokens) else token_file_path(config)
    if token_file is not None and not token_file.is_file():
        token_file = None
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
