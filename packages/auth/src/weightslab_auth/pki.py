"""The development PKI on disk: CA, backend/Envoy leaf certificates and the auth token file.

The CA key is kept (0600) so leaf certificates can be re-issued (:func:`reissue_leaves`)
without redistributing a new ``ca.crt`` to every client.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ObjectIdentifier

from weightslab_auth.certs import CLIENT_AUTH, SERVER_AUTH, cert_pem, issue_certificate, key_pem, make_ca
from weightslab_auth.settings import TOKEN_FILE_NAME as TOKEN_FILE_NAME  # one name, re-exported

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644
CA_MIN_DAYS = 3650  # the CA outlives its leaves so that re-signing does not need a new CA


class Leaf(NamedTuple):
    usage: ObjectIdentifier
    dns: tuple[str, ...]
    ips: tuple[str, ...]


LEAVES: dict[str, Leaf] = {
    "backend-server": Leaf(SERVER_AUTH, ("localhost",), ("127.0.0.1", "::1")),
    "envoy-server": Leaf(SERVER_AUTH, ("localhost",), ("127.0.0.1",)),
    "envoy-client": Leaf(CLIENT_AUTH, (), ()),
}


class PKIError(Exception):
    """The PKI directory is in a state we refuse to touch (message names the file)."""


@dataclass(frozen=True)
class PKIPaths:
    directory: Path
    ca_cert: Path
    ca_key: Path
    backend_cert: Path
    backend_key: Path
    envoy_server_cert: Path
    envoy_server_key: Path
    envoy_client_cert: Path
    envoy_client_key: Path
    token: Path

    @classmethod
    def of(cls, directory: str | os.PathLike[str]) -> PKIPaths:
        d = Path(directory).expanduser()
        return cls(d, d / "ca.crt", d / "ca.key", d / "backend-server.crt", d / "backend-server.key",
                   d / "envoy-server.crt", d / "envoy-server.key", d / "envoy-client.crt",
                   d / "envoy-client.key", d / TOKEN_FILE_NAME)

    def files(self) -> list[Path]:
        return [getattr(self, f.name) for f in fields(self) if f.name != "directory"]

    def leaf(self, name: str) -> tuple[Path, Path]:
        """``(cert, key)`` paths of a leaf in :data:`LEAVES`."""
        return self.directory / f"{name}.crt", self.directory / f"{name}.key"


def is_secret(path: Path) -> bool:
    return path.suffix == ".key" or path.name == TOKEN_FILE_NAME


def _write(path: Path, data: bytes) -> None:
    """Atomic write with the final mode set on the descriptor (umask cannot widen a key's mode)."""
    mode = SECRET_MODE if is_secret(path) else PUBLIC_MODE
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _refuse_existing(paths: Iterable[Path]) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise PKIError("refusing to overwrite existing file(s): " + ", ".join(existing)
                       + " (use --force / force=True to replace them)")


def _issue_leaf(paths: PKIPaths, name: str, ca_key: ec.EllipticCurvePrivateKey,
                ca_cert: x509.Certificate, days: float) -> None:
    spec = LEAVES[name]
    key, cert = issue_certificate(ca_key, ca_cert, name, usage=spec.usage, dns=spec.dns, ips=spec.ips,
                                  days=days)
    cert_path, key_path = paths.leaf(name)
    _write(key_path, key_pem(key))
    _write(cert_path, cert_pem(cert))


def _write_token(paths: PKIPaths) -> None:
    _write(paths.token, (secrets.token_urlsafe(32) + "\n").encode())


def _load_ca(paths: PKIPaths) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PKIError(f"{paths.ca_key}: expected the EC key written by `weightslab certs init`")
    return key, x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())


def _create(paths: PKIPaths, days: float, *, token: bool) -> PKIPaths:
    paths.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key, ca_cert = make_ca(days=max(days, CA_MIN_DAYS))
    _write(paths.ca_key, key_pem(ca_key))
    _write(paths.ca_cert, cert_pem(ca_cert))
    for name in LEAVES:
        _issue_leaf(paths, name, ca_key, ca_cert, days)
    if token:
        _write_token(paths)
    return paths


def create_dev_pki(directory: str | os.PathLike[str], *, days: float = 365, force: bool = False) -> PKIPaths:
    """Write a fresh CA, every leaf and a new token. Without ``force`` no existing file is replaced."""
    paths = PKIPaths.of(directory)
    if not force:
        _refuse_existing(paths.files())
    return _create(paths, days, token=True)


def reissue_leaves(directory: str | os.PathLike[str], *, days: float = 365) -> PKIPaths:
    """Re-sign every leaf certificate (new keys) with the kept CA; the CA and token stay."""
    paths = PKIPaths.of(directory)
    for needed in (paths.ca_cert, paths.ca_key):
        if not needed.is_file():
            raise PKIError(f"{needed} not found: run `weightslab certs init` first")
    ca_key, ca_cert = _load_ca(paths)
    for name in LEAVES:
        _issue_leaf(paths, name, ca_key, ca_cert, days)
    return paths


def _leaf_usable(cert_path: Path, key_path: Path) -> bool:
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.not_valid_after_utc > datetime.now(UTC)


def ensure_dev_pki(directory: str | os.PathLike[str], *, days: float = 365) -> PKIPaths:
    """Create whatever is missing (for demos and first runs); a complete, valid PKI is left as is.

    With the CA present, a leaf with a missing file or an expired certificate is re-issued by it;
    without the CA, existing leaves would be unverifiable, so that state is an error.
    """
    paths = PKIPaths.of(directory)
    has_ca = paths.ca_cert.is_file() and paths.ca_key.is_file()
    if not has_ca:
        _refuse_existing(p for p in paths.files() if p != paths.token)
        return _create(paths, days, token=not paths.token.exists())
    ca_key, ca_cert = _load_ca(paths)
    for name in LEAVES:
        if not _leaf_usable(*paths.leaf(name)):
            _issue_leaf(paths, name, ca_key, ca_cert, days)
    if not paths.token.is_file():
        _write_token(paths)
    return paths


def load_token(directory: str | os.PathLike[str]) -> str:
    """The token stored by :func:`create_dev_pki` (``<dir>/.grpc_auth_token``)."""
    path = PKIPaths.of(directory).token
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise PKIError(f"{path} not found: run `weightslab certs init`") from None
    if not token:
        raise PKIError(f"{path} is empty")
    return token
