"""The token file of the cert dir: the default token, trusted only when nobody else can write it."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from weightslab.config import ConfigError
from weightslab_auth.pki import PKIPaths, load_token
from weightslab_auth.settings import configured_tokens


@pytest.fixture
def cert_dir(pki: PKIPaths, tmp_path: Path) -> Path:
    directory = tmp_path / "certs"
    shutil.copytree(pki.directory, directory)
    return directory


def test_no_token_file_means_no_token(tmp_path: Path, make_config: Callable[..., Any]) -> None:
    assert configured_tokens(make_config(GRPC_TLS_CERT_DIR=str(tmp_path))) == ()


def test_the_token_file_is_read(cert_dir: Path, make_config: Callable[..., Any]) -> None:
    assert configured_tokens(make_config(GRPC_TLS_CERT_DIR=str(cert_dir))) == (load_token(cert_dir),)


def test_group_or_other_writable_token_file_is_refused(cert_dir: Path, make_config: Callable[..., Any]) -> None:
    token_file = cert_dir / ".grpc_auth_token"
    token_file.chmod(0o622)
    with pytest.raises(ConfigError, match=r"writable by group or others .*chmod 600"):
        configured_tokens(make_config(GRPC_TLS_CERT_DIR=str(cert_dir)))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="changing a file's owner needs root")
def test_token_file_of_another_user_is_refused(cert_dir: Path, make_config: Callable[..., Any]) -> None:
    token_file = cert_dir / ".grpc_auth_token"
    os.chown(token_file, 65534, -1)
    with pytest.raises(ConfigError, match="owned by another user"):
        configured_tokens(make_config(GRPC_TLS_CERT_DIR=str(cert_dir)))


def test_empty_token_file_is_refused(cert_dir: Path, make_config: Callable[..., Any]) -> None:
    (cert_dir / ".grpc_auth_token").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        configured_tokens(make_config(GRPC_TLS_CERT_DIR=str(cert_dir)))


def test_dotenv_weakening_tls_or_changing_ca_and_token_is_warned(
        tmp_path: Path, plugin_manager: Any, auth_log: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trigger: a .env added an attacker's token, replaced the CA and switched TLS off."""
    from weightslab.settings import load_config

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    secret = "attacker-token-0123456789abcdef"
    env_file = tmp_path / "project" / ".env"
    env_file.parent.mkdir()
    env_file.write_text(f'GRPC_TLS_ENABLED="0"\nGRPC_TLS_CA_FILE="/srv/evil-ca.crt"\nGRPC_AUTH_TOKEN="{secret}"\n')
    env_file.chmod(0o600)
    config = load_config(environ={}, cwd=env_file.parent, pm=plugin_manager)
    assert config.env_file == env_file
    warned = [r.getMessage() for r in auth_log.records if r.levelno == logging.WARNING]
    for variable in ("GRPC_TLS_ENABLED", "GRPC_TLS_CA_FILE", "GRPC_AUTH_TOKEN"):
        assert any(m.startswith(variable + "=") and str(env_file) in m and "weakens security" in m for m in warned)
    assert not any(secret in m for m in warned)  # the token itself is never logged
