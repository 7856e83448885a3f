"""Resolve and validate the backend's TLS files before any service thread starts.

Path precedence (spec): ``grpc_tls_*_file`` → ``GRPC_TLS_*_FILE`` → ``grpc_tls_cert_dir`` →
``GRPC_TLS_CERT_DIR`` → ``~/certs``. The resolver already applies config-first precedence per
variable, so an explicit file (config *or* env) simply wins over any cert dir: only a file
variable still at its default falls back to ``<cert dir>/<default name>``.

No grpc import here: the gRPC C core must not load before GRPC_VERBOSITY is applied, and
cryptography (several MB) loads only when TLS is on and the files are validated: with
``GRPC_TLS_ENABLED=0`` the configure hook and a CLI-only serve never import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightslab.config import Config, ConfigError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

CERT_DIR_VARIABLE = "GRPC_TLS_CERT_DIR"
KEY_FILE_VARIABLE = "GRPC_TLS_KEY_FILE"
CERT_FILE_VARIABLE = "GRPC_TLS_CERT_FILE"
CA_FILE_VARIABLE = "GRPC_TLS_CA_FILE"
DEFAULT_FILE_NAMES = {
    KEY_FILE_VARIABLE: "backend-server.key",
    CERT_FILE_VARIABLE: "backend-server.crt",
    CA_FILE_VARIABLE: "ca.crt",
}
_SOURCE_WORDS = {"env": "environment", ".env": ".env file", "kwarg": "keyword argument", "default": "default"}


@dataclass(frozen=True)
class TLSFile:
    """One effective TLS path and a human-readable account of where it came from."""

    variable: str
    path: Path
    origin: str

    def describe(self) -> str:
        return f"{self.variable}='{self.path}' ({self.origin})"


@dataclass(frozen=True)
class TLSPaths:
    key: TLSFile
    cert: TLSFile
    ca: TLSFile


@dataclass(frozen=True)
class TLSMaterial:
    """Validated PEM bytes for ``grpc.ssl_server_credentials``; the key is kept out of ``repr``."""

    key_file: Path
    cert_file: Path
    ca_file: Path | None
    require_client_auth: bool
    private_key: bytes = field(repr=False)
    certificate_chain: bytes
    root_certificates: bytes | None


def _source_text(config: Config, variable: str) -> str:
    entry = config.entries[variable]
    if entry.source == "config":
        return f"config key {entry.setting.config_key}"
    return _SOURCE_WORDS.get(entry.source, entry.source)


def _pick(config: Config, variable: str) -> TLSFile:
    entry = config.entries[variable]
    if entry.source != "default" and entry.value is not None:
        return TLSFile(variable, Path(entry.value), f"from {_source_text(config, variable)}")
    cert_dir = Path(config.entries[CERT_DIR_VARIABLE].value)
    origin = (f"default name in {CERT_DIR_VARIABLE}='{cert_dir}' "
              f"from {_source_text(config, CERT_DIR_VARIABLE)}")
    return TLSFile(variable, cert_dir / DEFAULT_FILE_NAMES[variable], origin)


def resolve_tls_paths(config: Config) -> TLSPaths:
    """The effective key, certificate and CA paths (no file is read)."""
    return TLSPaths(_pick(config, KEY_FILE_VARIABLE), _pick(config, CERT_FILE_VARIABLE),
                    _pick(config, CA_FILE_VARIABLE))


def _read(tls_file: TLSFile, errors: list[str]) -> bytes | None:
    hint = "" if tls_file.origin.startswith("from") else "; run `weightslab certs init` or set the variable"
    try:
        return tls_file.path.read_bytes()
    except FileNotFoundError:
        errors.append(f"{tls_file.describe()}: file not found{hint}")
    except IsADirectoryError:
        errors.append(f"{tls_file.describe()}: unreadable: is a directory, expected a PEM file")
    except OSError as exc:
        errors.append(f"{tls_file.describe()}: unreadable: {exc.strerror or exc}")
    return None


def _certificates(tls_file: TLSFile, data: bytes, errors: list[str]) -> list[x509.Certificate]:
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        errors.append(f"{tls_file.describe()}: not a valid PEM certificate")
        return []
    now = datetime.now(UTC)
    for cert in certs:
        subject = cert.subject.rfc4514_string()
        if cert.not_valid_after_utc < now:
            errors.append(f"{tls_file.describe()}: certificate {subject!r} expired on "
                          f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M UTC}")
        elif cert.not_valid_before_utc > now:
            errors.append(f"{tls_file.describe()}: certificate {subject!r} is not valid before "
                          f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M UTC}")
    return certs


def _private_key(tls_file: TLSFile, data: bytes, errors: list[str]) -> PrivateKeyTypes | None:
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        errors.append(f"{tls_file.describe()}: the private key is encrypted; gRPC needs an unencrypted PEM key")
    except Exception:  # ValueError, UnsupportedAlgorithm: both mean "not a key we can use"
        errors.append(f"{tls_file.describe()}: not a valid PEM private key")
    return None


def _public_der(holder: Any) -> bytes:
    """SubjectPublicKeyInfo of a private key or a certificate (equal iff they belong together)."""
    from cryptography.hazmat.primitives import serialization

    return bytes(holder.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def load_tls(config: Config) -> TLSMaterial | None:
    """Validated TLS material, or ``None`` when ``GRPC_TLS_ENABLED`` is off.

    Raises one :class:`ConfigError` listing every problem; each line names the variable and path.
    """
    auth = config["auth"]
    if not auth.tls_enabled:
        return None
    paths = resolve_tls_paths(config)
    errors: list[str] = []
    key_bytes = _read(paths.key, errors)
    cert_bytes = _read(paths.cert, errors)
    key = _private_key(paths.key, key_bytes, errors) if key_bytes is not None else None
    certs = _certificates(paths.cert, cert_bytes, errors) if cert_bytes is not None else []
    if key is not None and certs and _public_der(key) != _public_der(certs[0]):
        errors.append(f"{paths.key.describe()} does not match {paths.cert.describe()}: "
                      "the private key is not the certificate's key")
    ca_bytes: bytes | None = None
    if auth.require_client_auth:  # the CA only verifies client certificates
        ca_bytes = _read(paths.ca, errors)
        if ca_bytes is not None:
            _certificates(paths.ca, ca_bytes, errors)
    if errors:
        raise ConfigError(errors[0] if len(errors) == 1 else
                          "invalid TLS configuration:\n  " + "\n  ".join(errors))
    assert key_bytes is not None and cert_bytes is not None  # guaranteed when no error was recorded
    return TLSMaterial(paths.key.path, paths.cert.path, paths.ca.path if ca_bytes is not None else None,
                       auth.require_client_auth, key_bytes, cert_bytes, ca_bytes)
