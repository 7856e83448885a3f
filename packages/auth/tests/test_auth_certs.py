"""Dev PKI generation: files, modes, certificate contents, `weightslab certs init|resign`."""

from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from weightslab.config import fingerprint
from weightslab_auth import plugin
from weightslab_auth.cli import certs_group
from weightslab_auth.pki import PKIError, PKIPaths, create_dev_pki, ensure_dev_pki, load_token, reissue_leaves


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)}


def _eku(cert: x509.Certificate) -> list[Any]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_pki_files_modes_and_certificates(pki: PKIPaths) -> None:
    assert {p.name for p in pki.directory.iterdir()} == {
        "ca.crt", "ca.key", "backend-server.crt", "backend-server.key", "envoy-server.crt", "envoy-server.key",
        "envoy-client.crt", "envoy-client.key", ".grpc_auth_token"}
    for path in (pki.ca_key, pki.backend_key, pki.envoy_server_key, pki.envoy_client_key, pki.token):
        assert _mode(path) == 0o600, path
    ca = _cert(pki.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    backend, envoy_server, envoy_client = (_cert(p) for p in (pki.backend_cert, pki.envoy_server_cert,
                                                              pki.envoy_client_cert))
    assert _sans(backend) == {"localhost", "127.0.0.1", "::1"}
    assert _sans(envoy_server) == {"localhost", "127.0.0.1"}
    assert _eku(backend) == _eku(envoy_server) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _eku(envoy_client) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    for leaf in (backend, envoy_server, envoy_client):
        leaf.verify_directly_issued_by(ca)
    assert ipaddress.ip_address("::1") in backend.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
    assert len(load_token(pki.directory)) >= 40


def test_create_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    paths = create_dev_pki(tmp_path)
    token = load_token(tmp_path)
    with pytest.raises(PKIError, match="ca.crt"):
        create_dev_pki(tmp_path)
    assert load_token(tmp_path) == token
    create_dev_pki(tmp_path, force=True)
    assert load_token(tmp_path) != token
    assert _mode(paths.ca_key) == 0o600


def test_ensure_creates_once_then_keeps(tmp_path: Path) -> None:
    paths = ensure_dev_pki(tmp_path / "certs")
    before = {p: p.read_bytes() for p in paths.files()}
    assert ensure_dev_pki(tmp_path / "certs") == paths
    assert {p: p.read_bytes() for p in paths.files()} == before


def test_ensure_reissues_a_missing_leaf_with_the_kept_ca(tmp_path: Path) -> None:
    paths = ensure_dev_pki(tmp_path)
    ca_before, token = paths.ca_cert.read_bytes(), load_token(tmp_path)
    paths.backend_key.unlink()
    paths.token.unlink()
    ensure_dev_pki(tmp_path)
    assert paths.ca_cert.read_bytes() == ca_before
    _cert(paths.backend_cert).verify_directly_issued_by(_cert(paths.ca_cert))
    assert load_token(tmp_path) != token


def test_ensure_refuses_leaves_without_their_ca(tmp_path: Path) -> None:
    paths = create_dev_pki(tmp_path)
    paths.ca_key.unlink()
    with pytest.raises(PKIError, match="ca.crt"):
        ensure_dev_pki(tmp_path)


def test_reissue_keeps_ca_and_token(tmp_path: Path) -> None:
    paths = create_dev_pki(tmp_path, days=1)
    ca, token, old_leaf = paths.ca_cert.read_bytes(), load_token(tmp_path), paths.backend_cert.read_bytes()
    reissue_leaves(tmp_path, days=30)
    assert paths.ca_cert.read_bytes() == ca and load_token(tmp_path) == token
    assert paths.backend_cert.read_bytes() != old_leaf
    leaf = _cert(paths.backend_cert)
    leaf.verify_directly_issued_by(_cert(paths.ca_cert))
    assert leaf.not_valid_after_utc - datetime.now(UTC) > timedelta(days=29)


def test_load_token_missing(tmp_path: Path) -> None:
    with pytest.raises(PKIError, match=".grpc_auth_token"):
        load_token(tmp_path)


# --- CLI -------------------------------------------------------------------------------------


def test_certs_init_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "certs"
    result = runner.invoke(certs_group, ["init", "--dir", str(target), "--days", "2"])
    assert result.exit_code == 0, result.output
    token = load_token(target)
    assert token not in result.output
    assert f"fingerprint {fingerprint(token)}" in result.output
    assert "backend-server.key" in result.output and str(target) in result.output
    for key in target.glob("*.key"):
        assert _mode(key) == 0o600
    backend = _cert(target / "backend-server.crt")
    assert backend.not_valid_after_utc - datetime.now(UTC) < timedelta(days=2, minutes=1)

    again = runner.invoke(certs_group, ["init", "--dir", str(target)])
    assert again.exit_code != 0
    assert "refusing to overwrite" in again.output and str(target / "ca.crt") in again.output
    assert load_token(target) == token

    forced = runner.invoke(certs_group, ["init", "--dir", str(target), "--force"])
    assert forced.exit_code == 0 and load_token(target) != token


def test_certs_init_defaults_to_effective_cert_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WEIGHTSLAB_ENV_FILE", raising=False)
    monkeypatch.setenv("GRPC_TLS_CERT_DIR", str(tmp_path / "from-env"))
    result = CliRunner().invoke(certs_group, ["init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-env" / "backend-server.crt").is_file()


def test_certs_resign_cli(tmp_path: Path) -> None:
    create_dev_pki(tmp_path)
    token = load_token(tmp_path)
    result = CliRunner().invoke(certs_group, ["resign", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Re-issued" in result.output and token not in result.output
    assert CliRunner().invoke(certs_group, ["resign", "--dir", str(tmp_path / "empty")]).exit_code != 0


def test_weightslab_certs_init_via_console_script(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  auth_log: Any) -> None:
    from weightslab_cli.main import main

    assert plugin.weightslab_cli_commands() == [certs_group]
    target = tmp_path / "certs"
    assert main(["certs", "init", "--dir", str(target)]) == 0
    assert main(["certs", "init", "--dir", str(target)]) == 1
    out, err = capsys.readouterr()
    token = load_token(target)
    assert "Wrote the development PKI" in out and "refusing to overwrite" in err
    assert token not in out + err + auth_log.text
