"""``weightslab certs init|resign``: the development PKI from the command line.

Output lists every file written and the token's fingerprint, never the token itself.
"""

from __future__ import annotations

from pathlib import Path

import click
from weightslab.config import ConfigError, fingerprint

from weightslab_auth.pki import PKIError, PKIPaths, create_dev_pki, is_secret, load_token, reissue_leaves


def default_cert_dir() -> Path:
    """The effective GRPC_TLS_CERT_DIR (environment, ``.env``, else ``~/certs``)."""
    from weightslab.config import resolve

    from weightslab_auth.settings import AuthSettings

    try:
        return Path(resolve([AuthSettings])["auth"].cert_dir)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _report(paths: PKIPaths, written: list[Path], action: str) -> None:
    # absolute paths: `--dir ./certs` must print a GRPC_TLS_CERT_DIR that works from any directory
    paths = PKIPaths.of(paths.directory.expanduser().resolve())
    click.echo(f"{action} in {paths.directory}:")
    for path in written:
        click.echo(f"  {path.name:<20} {oct(path.stat().st_mode & 0o777)[2:]}"
                   f"{'  (secret)' if is_secret(path) else ''}")
    try:
        click.echo(f"auth token: {paths.token} (fingerprint {fingerprint(load_token(paths.directory))})")
    except PKIError as exc:
        click.echo(f"auth token: {exc}")
    click.echo(f"backend: GRPC_TLS_CERT_DIR={paths.directory}  clients: "
               f"GRPC_AUTH_TOKEN=\"$(cat {paths.token})\", CA {paths.ca_cert}, "
               f"client cert {paths.envoy_client_cert}")


_dir_option = click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
                           help="Target directory (default: the effective GRPC_TLS_CERT_DIR, ~/certs).")
_days_option = click.option("--days", type=click.IntRange(min=1), default=365, show_default=True,
                            help="Validity of the leaf certificates in days (the CA lives at least 10 years).")


@click.group("certs", help="Development PKI: CA, backend/Envoy certificates and the auth token.")
def certs_group() -> None:
    pass


@certs_group.command("init", help="Create a dev CA, backend-server, envoy-server, envoy-client "
                                  "certificates and a random auth token.")
@_dir_option
@click.option("--force", is_flag=True, help="Replace existing files (new CA and new token).")
@_days_option
def init_cmd(directory: Path | None, force: bool, days: int) -> None:
    directory = (directory or default_cert_dir()).expanduser()
    try:
        paths = create_dev_pki(directory, days=days, force=force)
    except (PKIError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    _report(paths, paths.files(), "Wrote the development PKI")


@certs_group.command("resign", help="Re-issue the leaf certificates with the kept CA (CA and token unchanged).")
@_dir_option
@_days_option
def resign_cmd(directory: Path | None, days: int) -> None:
    directory = (directory or default_cert_dir()).expanduser()
    try:
        paths = reissue_leaves(directory, days=days)
    except (PKIError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    leaves = [p for p in paths.files() if p.name.startswith(("backend-", "envoy-"))]
    _report(paths, leaves, "Re-issued the leaf certificates")
