"""TLS and token settings owned by weightslab-auth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from weightslab.config import Config, Setting, SettingsSection
from weightslab.config import fields as f


class AuthSettings(SettingsSection):
    section = "auth"
    owner = "weightslab-auth"

    tls_enabled: Annotated[bool, Setting(
        "GRPC_TLS_ENABLED", f.boolean, "TLS on the backend socket.", config_key="grpc_tls_enabled")] = True
    cert_dir: Annotated[Path, Setting(
        "GRPC_TLS_CERT_DIR", f.path, "Base directory of the default certificate files.",
        config_key="grpc_tls_cert_dir")] = Path("~/certs").expanduser()
    key_file: Annotated[Path | None, Setting(
        "GRPC_TLS_KEY_FILE", f.path, "Server private key (default <cert dir>/backend-server.key).",
        config_key="grpc_tls_key_file")] = None
    cert_file: Annotated[Path | None, Setting(
        "GRPC_TLS_CERT_FILE", f.path, "Server certificate (default <cert dir>/backend-server.crt).",
        config_key="grpc_tls_cert_file")] = None
    ca_file: Annotated[Path | None, Setting(
        "GRPC_TLS_CA_FILE", f.path, "CA verifying client certificates (default <cert dir>/ca.crt).",
        config_key="grpc_tls_ca_file")] = None
    require_client_auth: Annotated[bool, Setting(
        "GRPC_TLS_REQUIRE_CLIENT_AUTH", f.boolean, "Require client certificates (mTLS).",
        config_key="grpc_tls_require_client_auth")] = True
    auth_token: Annotated[str | None, Setting(
        "GRPC_AUTH_TOKEN", f.text, "Shared token accepted in request metadata.", secret=True)] = None
    auth_tokens: Annotated[tuple[str, ...], Setting(
        "GRPC_AUTH_TOKENS", f.csv_list, "Comma-separated accepted tokens (rotation).", secret=True)] = ()


def configured_tokens(config: Config) -> tuple[str, ...]:
    """The accepted tokens: union of GRPC_AUTH_TOKEN and GRPC_AUTH_TOKENS, in order, deduplicated.

    Lives here (not in tokens.py) so start-up validation does not import grpc before
    GRPC_VERBOSITY is applied.
    """
    auth = config["auth"]
    tokens = ([auth.auth_token] if auth.auth_token else []) + list(auth.auth_tokens)
    return tuple(dict.fromkeys(t for t in tokens if t))
