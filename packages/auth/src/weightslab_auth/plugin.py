"""Hook implementations of weightslab-auth.

grpc is imported inside the hooks only: loading this plugin must not load the gRPC C core
before the server package has applied GRPC_VERBOSITY.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from weightslab.hookspecs import hookimpl

if TYPE_CHECKING:
    from weightslab.security import ServerSecurity

log = logging.getLogger("weightslab.auth")
MIN_TOKEN_LENGTH = 16


@hookimpl
def weightslab_config_sections() -> list[Any]:
    from weightslab_auth.settings import AuthSettings

    return [AuthSettings]


@hookimpl
def weightslab_configure(config: Any) -> None:
    """Fail fast (ConfigError naming variable and path) on unusable TLS files when TLS is on."""
    if "auth" not in config:
        return
    from weightslab.config import fingerprint

    from weightslab_auth.settings import configured_tokens
    from weightslab_auth.tls import load_tls

    load_tls(config)
    for token in configured_tokens(config):
        if len(token) < MIN_TOKEN_LENGTH:
            log.warning("auth token (fingerprint %s) is shorter than %d characters; "
                        "use `weightslab certs init` for a random one", fingerprint(token), MIN_TOKEN_LENGTH)


@hookimpl
def weightslab_grpc_server_credentials(config: Any) -> Any:
    """TLS/mTLS server credentials, or ``None`` (with a loud WARNING) when GRPC_TLS_ENABLED=0."""
    from weightslab_auth.credentials import server_credentials

    return server_credentials(config)


@hookimpl
def weightslab_server_security(config: Any) -> ServerSecurity | None:
    """TLS context and tokens for servers on their own socket (the CLI server)."""
    if "auth" not in config:
        return None
    from weightslab_auth.server_security import server_security

    return server_security(config)


@hookimpl(tryfirst=True)  # first in the result list: auth must be the outermost interceptor
def weightslab_grpc_interceptors(config: Any) -> list[Any]:
    """The token interceptor when any token is configured; attach audit with
    ``interceptor.add_auth_failure_listener(callback)``."""
    from weightslab_auth.tokens import TokenAuthInterceptor, configured_tokens

    tokens = configured_tokens(config)
    if not tokens:
        auth = config["auth"]
        if not (auth.tls_enabled and auth.require_client_auth):
            log.warning("no GRPC_AUTH_TOKEN/GRPC_AUTH_TOKENS and no mTLS: gRPC callers are not authenticated")
        return []
    return [TokenAuthInterceptor(tokens)]


@hookimpl
def weightslab_cli_commands() -> list[Any]:
    from weightslab_auth.cli import certs_group

    return [certs_group]
