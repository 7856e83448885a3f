"""TLS and token settings owned by weightslab-auth."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Annotated

from pydantic import Field
from weightslab.config import Config, ConfigError, Setting, SettingsSection
from weightslab.config import fields as f


def _home_certs() -> Path:
    """``~/certs`` of the HOME in effect when the settings are read (not when this module was imported)."""
    return Path("~/certs").expanduser()


class AuthSettings(SettingsSection):
    section = "auth"
    owner = "weightslab-auth"

    tls_enabled: Annotated[bool, Setting(
        "GRPC_TLS_ENABLED", f.boolean, "TLS on the backend socket.", config_key="grpc_tls_enabled",
        weakens=f.is_false)] = True
    cert_dir: Annotated[Path, Setting(
        "GRPC_TLS_CERT_DIR", f.path, "Base directory of the default certificate files (and of the token file "
        "written by `weightslab certs init`, the default token).",
        config_key="grpc_tls_cert_dir", weakens=f.always)] = Field(default_factory=_home_certs)
    key_file: Annotated[Path | None, Setting(
        "GRPC_TLS_KEY_FILE", f.path, "Server private key (default <cert dir>/backend-server.key).",
        config_key="grpc_tls_key_file", weakens=f.always)] = None
    cert_file: Annotated[Path | None, Setting(
        "GRPC_TLS_CERT_FILE", f.path, "Server certificate (default <cert dir>/backend-server.crt).",
        config_key="grpc_tls_cert_file", weakens=f.always)] = None
    ca_file: Annotated[Path | None, Setting(
        "GRPC_TLS_CA_FILE", f.path, "CA verifying client certificates (default <cert dir>/ca.crt).",
        config_key="grpc_tls_ca_file", weakens=f.always)] = None
    require_client_auth: Annotated[bool, Setting(
        "GRPC_TLS_REQUIRE_CLIENT_AUTH", f.boolean, "Require client certificates (mTLS).",
        config_key="grpc_tls_require_client_auth", weakens=f.is_false)] = True
    auth_token: Annotated[str | None, Setting(
        "GRPC_AUTH_TOKEN", f.text,
        "Shared token accepted in request metadata (default: the token file in the cert dir, if any).",
        secret=True, weakens=f.always)] = None
    auth_tokens: Annotated[tuple[str, ...], Setting(
        "GRPC_AUTH_TOKENS", f.csv_list, "Comma-separated accepted tokens (rotation).", secret=True,
        weakens=f.always)] = ()


TOKEN_FILE_NAME = ".grpc_auth_token"  # written by `weightslab certs init` in the cert dir


def token_file_path(config: Config) -> Path:
    """``<GRPC_TLS_CERT_DIR>/.grpc_auth_token``, whether it exists or not."""
    return Path(config["auth"].cert_dir) / TOKEN_FILE_NAME


def read_token_file(path: Path) -> str | None:
    """The token in ``path``; ``None`` when there is no such file.

    Raises :class:`ConfigError` when the file exists but must not be trusted (another owner,
    writable by group/others: anyone who can write it chooses the token) or is empty/unreadable.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"token file {path} (default of GRPC_AUTH_TOKEN in GRPC_TLS_CERT_DIR): "
                          f"unreadable: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"token file {path} (default of GRPC_AUTH_TOKEN in GRPC_TLS_CERT_DIR): not a regular file")
    if os.name != "posix":  # no owner and no meaningful mode bits to check
        pass
    elif st.st_uid not in (os.getuid(), 0):
        raise ConfigError(f"token file {path} is owned by another user (uid {st.st_uid}): refusing to trust it; "
                          "run `weightslab certs init` in a directory of your own or set GRPC_AUTH_TOKEN")
    elif st.st_mode & 0o022:
        raise ConfigError(f"token file {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o}): "
                          f"refusing to trust it; run `chmod 600 {path}`")
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"token file {path}: unreadable: {exc}") from None
    if not token:
        raise ConfigError(f"token file {path} is empty: run `weightslab certs init --force` or delete it")
    return token


def configured_tokens(config: Config) -> tuple[str, ...]:
    """The accepted tokens: union of GRPC_AUTH_TOKEN and GRPC_AUTH_TOKENS, in order, deduplicated.

    When neither variable is set, the token file that `weightslab certs init` wrote in the cert
    dir (``<GRPC_TLS_CERT_DIR>/.grpc_auth_token``) is the token, for every server alike (gRPC
    and the CLI server): creating the dev PKI is enough to require a token.

    Lives here (not in tokens.py) so start-up validation does not import grpc before
    GRPC_VERBOSITY is applied.
    """
    auth = config["auth"]
    tokens = ([auth.auth_token] if auth.auth_token else []) + list(auth.auth_tokens)
    explicit = tuple(dict.fromkeys(t for t in tokens if t))
    if explicit:
        return explicit
    from_file = read_token_file(token_file_path(config))
    return (from_file,) if from_file else ()


def token_source(config: Config) -> str:
    """Where the accepted tokens come from, for messages (never a token)."""
    auth = config["auth"]
    if auth.auth_token or auth.auth_tokens:
        return "GRPC_AUTH_TOKEN/GRPC_AUTH_TOKENS"
    path = token_file_path(config)
    return f"token file {path}" if path.is_file() else "none"
