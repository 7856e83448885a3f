"""TLS path precedence and fail-fast validation of the TLS files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from weightslab.config import ConfigError
from weightslab.settings import load_config
from weightslab_auth.certs import SERVER_AUTH, cert_pem, issue_certificate, key_pem
from weightslab_auth.pki import PKIPaths
from weightslab_auth.tls import load_tls, resolve_tls_paths

# --- precedence: grpc_tls_*_file → GRPC_TLS_*_FILE → grpc_tls_cert_dir → GRPC_TLS_CERT_DIR → ~/certs


def test_config_file_beats_env_file(make_config: Callable[..., Any], tmp_path: Path) -> None:
    config = make_config(config={"grpc_tls_cert_file": str(tmp_path / "cfg.crt")},
                         GRPC_TLS_CERT_FILE=str(tmp_path / "env.crt"))
    assert resolve_tls_paths(config).cert.path == tmp_path / "cfg.crt"
    assert "config key grpc_tls_cert_file" in resolve_tls_paths(config).cert.origin


def test_env_file_beats_config_cert_dir(make_config: Callable[..., Any], tmp_path: Path) -> None:
    config = make_config(config={"grpc_tls_cert_dir": str(tmp_path / "cfgdir")},
                         GRPC_TLS_KEY_FILE=str(tmp_path / "env.key"))
    paths = resolve_tls_paths(config)
    assert paths.key.path == tmp_path / "env.key"
    assert paths.cert.path == tmp_path / "cfgdir" / "backend-server.crt"
    assert paths.ca.path == tmp_path / "cfgdir" / "ca.crt"


def test_config_cert_dir_beats_env_cert_dir(make_config: Callable[..., Any], tmp_path: Path) -> None:
    config = make_config(config={"grpc_tls_cert_dir": str(tmp_path / "cfgdir")},
                         GRPC_TLS_CERT_DIR=str(tmp_path / "envdir"))
    paths = resolve_tls_paths(config)
    assert (paths.key.path, paths.cert.path, paths.ca.path) == (
        tmp_path / "cfgdir" / "backend-server.key", tmp_path / "cfgdir" / "backend-server.crt",
        tmp_path / "cfgdir" / "ca.crt")


def test_env_cert_dir_then_home_certs(make_config: Callable[..., Any], tmp_path: Path) -> None:
    assert resolve_tls_paths(make_config(GRPC_TLS_CERT_DIR=str(tmp_path))).ca.path == tmp_path / "ca.crt"
    assert resolve_tls_paths(make_config()).cert.path == Path("~/certs").expanduser() / "backend-server.crt"


def test_effective_files_are_the_ones_loaded(pki: PKIPaths, make_config: Callable[..., Any],
                                             tmp_path: Path) -> None:
    # The env cert dir is empty; the config cert dir holds the real PKI and must win.
    config = make_config(config={"grpc_tls_cert_dir": str(pki.directory)}, GRPC_TLS_CERT_DIR=str(tmp_path))
    material = load_tls(config)
    assert material is not None
    assert material.cert_file == pki.backend_cert and material.ca_file == pki.ca_cert
    assert material.private_key == pki.backend_key.read_bytes()
    assert material.root_certificates == pki.ca_cert.read_bytes()
    assert "PRIVATE KEY" not in repr(material)


def test_config_flags_win_over_env(pki: PKIPaths, make_config: Callable[..., Any]) -> None:
    config = make_config(config={"grpc_tls_enabled": False}, GRPC_TLS_ENABLED="1")
    assert load_tls(config) is None
    config = make_config(config={"grpc_tls_require_client_auth": False}, GRPC_TLS_REQUIRE_CLIENT_AUTH="1",
                         GRPC_TLS_CERT_DIR=str(pki.directory))
    material = load_tls(config)
    assert material is not None and not material.require_client_auth and material.root_certificates is None


# --- fail-fast validation ------------------------------------------------------------------


def _error(config: Any) -> str:
    with pytest.raises(ConfigError) as err:
        load_tls(config)
    return str(err.value)


def test_missing_file_names_variable_dir_and_path(make_config: Callable[..., Any], tmp_path: Path) -> None:
    message = _error(make_config(GRPC_TLS_CERT_DIR=str(tmp_path)))
    for expected in ("GRPC_TLS_KEY_FILE", "GRPC_TLS_CERT_FILE", "GRPC_TLS_CA_FILE", "GRPC_TLS_CERT_DIR",
                     str(tmp_path / "backend-server.crt"), "file not found", "weightslab certs init"):
        assert expected in message


def test_missing_explicit_file(pki: PKIPaths, make_config: Callable[..., Any], tmp_path: Path) -> None:
    missing = tmp_path / "nope.crt"
    message = _error(make_config(GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_TLS_CERT_FILE=str(missing)))
    assert message.startswith(f"GRPC_TLS_CERT_FILE='{missing}' (from environment): file not found")


@pytest.mark.parametrize("variable", ["GRPC_TLS_CERT_FILE", "GRPC_TLS_KEY_FILE", "GRPC_TLS_CA_FILE"])
def test_garbage_is_not_pem(pki: PKIPaths, make_config: Callable[..., Any], tmp_path: Path,
                            variable: str) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"this is not a PEM file\n")
    message = _error(make_config(GRPC_TLS_CERT_DIR=str(pki.directory), **{variable: str(garbage)}))
    assert f"{variable}='{garbage}'" in message and "not a valid PEM" in message


def test_key_in_certificate_slot_is_not_a_certificate(pki: PKIPaths, make_config: Callable[..., Any]) -> None:
    message = _error(make_config(GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_TLS_CERT_FILE=str(pki.backend_key)))
    assert "GRPC_TLS_CERT_FILE" in message and "not a valid PEM certificate" in message


def test_directory_is_unreadable(pki: PKIPaths, make_config: Callable[..., Any], tmp_path: Path) -> None:
    message = _error(make_config(GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_TLS_KEY_FILE=str(tmp_path)))
    assert f"GRPC_TLS_KEY_FILE='{tmp_path}'" in message and "unreadable" in message


def test_mismatched_key_and_certificate(pki: PKIPaths, other_pki: PKIPaths,
                                        make_config: Callable[..., Any]) -> None:
    message = _error(make_config(GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_TLS_KEY_FILE=str(other_pki.backend_key)))
    assert f"GRPC_TLS_KEY_FILE='{other_pki.backend_key}'" in message
    assert f"does not match GRPC_TLS_CERT_FILE='{pki.backend_cert}'" in message


def test_encrypted_key_is_rejected(pki: PKIPaths, make_config: Callable[..., Any], tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pki.backend_key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"pw")))
    message = _error(make_config(GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_TLS_KEY_FILE=str(encrypted)))
    assert "GRPC_TLS_KEY_FILE" in message and "encrypted" in message


def _leaf(pki: PKIPaths, tmp_path: Path, now: datetime) -> tuple[Path, Path]:
    from cryptography import x509

    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key, cert = issue_certificate(ca_key, ca_cert, "backend-server", usage=SERVER_AUTH,
                                  dns=("localhost",), days=1, now=now)
    (tmp_path / "leaf.key").write_bytes(key_pem(key))
    (tmp_path / "leaf.crt").write_bytes(cert_pem(cert))
    return tmp_path / "leaf.key", tmp_path / "leaf.crt"


@pytest.mark.parametrize(("shift", "words"), [(timedelta(days=-30), "expired on"),
                                              (timedelta(days=30), "not valid before")])
def test_expired_or_not_yet_valid_certificate(pki: PKIPaths, make_config: Callable[..., Any], tmp_path: Path,
                                              shift: timedelta, words: str) -> None:
    key, cert = _leaf(pki, tmp_path, datetime.now(UTC) + shift)
    message = _error(make_config(GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_TLS_KEY_FILE=str(key),
                                 GRPC_TLS_CERT_FILE=str(cert)))
    assert message.startswith(f"GRPC_TLS_CERT_FILE='{cert}'") and words in message


def test_ca_only_required_with_client_auth(pki: PKIPaths, make_config: Callable[..., Any],
                                           tmp_path: Path) -> None:
    files = {"GRPC_TLS_KEY_FILE": str(pki.backend_key), "GRPC_TLS_CERT_FILE": str(pki.backend_cert),
             "GRPC_TLS_CERT_DIR": str(tmp_path)}  # no ca.crt there
    assert load_tls(make_config(GRPC_TLS_REQUIRE_CLIENT_AUTH="no", **files)) is not None
    assert "GRPC_TLS_CA_FILE" in _error(make_config(**files))


def test_disabled_tls_reads_no_file(make_config: Callable[..., Any], tmp_path: Path) -> None:
    assert load_tls(make_config(GRPC_TLS_ENABLED="off", GRPC_TLS_CERT_DIR=str(tmp_path))) is None


def test_startup_validation_through_load_config(plugin_manager: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GRPC_TLS_CERT_FILE="):
        load_config(environ={"GRPC_TLS_CERT_DIR": str(tmp_path)}, cwd=tmp_path, pm=plugin_manager)
    config = load_config(environ={"GRPC_TLS_ENABLED": "0"}, cwd=tmp_path, pm=plugin_manager)
    assert config["auth"].tls_enabled is False


def test_short_token_warns_with_fingerprint_only(plugin_manager: Any, pki: PKIPaths, tmp_path: Path,
                                                 auth_log: Any) -> None:
    load_config(environ={"GRPC_TLS_CERT_DIR": str(pki.directory), "GRPC_AUTH_TOKENS": "short1"},
                cwd=tmp_path, pm=plugin_manager)
    assert "shorter than" in auth_log.text and "short1" not in auth_log.text


def test_the_default_cert_dir_follows_home_when_the_settings_are_read(
        plugin_manager: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``~/certs`` is expanded when a configuration is loaded, not when weightslab_auth was first
    imported: a process that changes HOME (a test, a sandbox) never sees another HOME's folder
    (the test gate found the default frozen by whichever test imported the module first)."""
    for home in (tmp_path / "a", tmp_path / "b"):
        monkeypatch.setenv("HOME", str(home))
        config = load_config(environ={"GRPC_TLS_ENABLED": "0"}, cwd=tmp_path, pm=plugin_manager)
        assert Path(config["auth"].cert_dir) == home / "certs"


LAZY_CRYPTOGRAPHY_SCRIPT = textwrap.dedent("""
    import sys
    from weightslab.config import resolve
    from weightslab_auth import plugin
    from weightslab_auth.settings import AuthSettings

    def config(tls):
        return resolve([AuthSettings], environ={"GRPC_TLS_ENABLED": tls, "GRPC_TLS_CERT_DIR": sys.argv[1]},
                       env_file=None)

    off = config("0")
    plugin.weightslab_configure(config=off)
    security = plugin.weightslab_server_security(config=off)
    assert security is not None and security.ssl_context is None
    assert "cryptography" not in sys.modules, "TLS is off but cryptography was imported"
    on = config("1")
    plugin.weightslab_configure(config=on)  # validates the files: now cryptography is needed
    assert plugin.weightslab_server_security(config=on).ssl_context is not None
    assert "cryptography.x509" in sys.modules
    print("ok")
""")


def test_cryptography_loads_only_when_tls_files_are_validated(pki: PKIPaths) -> None:
    """A fresh interpreter: with GRPC_TLS_ENABLED=0 the configure hook and the CLI server's
    security import no cryptography (several MB); with TLS on the files are still validated."""
    done = subprocess.run([sys.executable, "-c", LAZY_CRYPTOGRAPHY_SCRIPT, str(pki.directory)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "ok"
