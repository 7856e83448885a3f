"""``weightslab config show|check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


@click.group("config", help="Show or check the effective configuration.")
def config_group() -> None:
    pass


@config_group.command("show", help="Every setting of every plugin, its value and its source.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show(as_json: bool) -> None:
    from weightslab.config import ConfigError
    from weightslab.plugins import get_plugin_manager
    from weightslab.settings import load_config

    try:
        # Values are parsed and checked here (a bad value fails); the plugins' start-up checks
        # (weightslab_configure, e.g. TLS files present) are `config check`'s job: showing the
        # configuration must work on a machine that cannot start the services yet.
        config = load_config(validate=False)
    except ConfigError as exc:
        raise click.ClickException(_once(str(exc))) from None
    try:
        get_plugin_manager().hook.weightslab_configure(config=config)
    except ConfigError as exc:
        click.echo(f"Warning: `weightslab config check` fails: {_once(str(exc))}", err=True)
    data = displayed(config)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    from rich.table import Table

    from weightslab_cli.console import make_console

    table = Table("variable", "value", "source", "owner", title="WeightsLab configuration")
    for name, row in data.items():
        value = "unset" if row["value"] is None else str(row["value"])
        table.add_row(name, value, row["source"], row["owner"])
    console = make_console()  # unbounded width in a pipe: `config show | grep` sees every row whole
    console.print(table)
    console.print(f".env file: {config.env_file or 'none found'}")
    for name in dict.fromkeys(entry.section for entry in config.entries.values()):
        for line in config[name].notes():  # e.g. which agent_config.yaml won the lookup
            console.print(line, markup=False, highlight=False)


@config_group.command("check", help="Exit non-zero with the error when the configuration is invalid.")
def check() -> None:
    from weightslab.config import ConfigError
    from weightslab.settings import load_config

    try:
        load_config()
    except ConfigError as exc:
        raise click.ClickException(_once(str(exc))) from None
    click.echo("configuration OK")


def _once(message: str) -> str:
    """Each line once (a variable read by two packages is reported by both)."""
    return "\n".join(dict.fromkeys(message.splitlines()))


def displayed(config: Any) -> dict[str, dict[str, Any]]:
    """``config.as_json()`` as the user needs it: effective derived paths, and ``unset`` (not null) secrets."""
    data: dict[str, dict[str, Any]] = config.as_json()
    for name, entry in config.entries.items():
        if entry.setting.secret and data[name]["value"] is None:
            data[name]["value"] = "unset"
    for name, (value, source) in _derived_tls_files(config).items():
        data[name] = {**data[name], "value": value, "source": source}
    token_row = _token_from_file(config)
    if token_row is not None and "GRPC_AUTH_TOKEN" in data:
        data["GRPC_AUTH_TOKEN"] = {**data["GRPC_AUTH_TOKEN"], "value": token_row[0], "source": token_row[1]}
    return data


def _token_from_file(config: Any) -> tuple[str, str] | None:
    """Neither token variable set but `weightslab certs init` wrote a token file: that file is the
    token every server accepts, so the row says so (a fingerprint, never the token)."""
    try:
        from weightslab_auth.settings import configured_tokens, token_file_path, token_source
    except ImportError:  # weightslab[auth] not installed: no token file is read
        return None
    from weightslab.config import ConfigError, fingerprint

    if "auth" not in config or not token_source(config).startswith("token file"):
        return None
    try:
        tokens = configured_tokens(config)
    except ConfigError as exc:  # e.g. a file owned by another user: shown, not trusted
        return f"not used ({exc})", f"token file {token_file_path(config)}"
    if not tokens:
        return None
    return f"fingerprint {fingerprint(tokens[0])}", f"token file {token_file_path(config)}"


def _derived_tls_files(config: Any) -> dict[str, tuple[str, str]]:
    """TLS file variables left at their default: the file actually used, ``<cert dir>/<default name>``."""
    try:
        from weightslab_auth.tls import CERT_DIR_VARIABLE, DEFAULT_FILE_NAMES
    except ImportError:  # weightslab[auth] not installed: no TLS files to derive
        return {}
    entries = config.entries
    if CERT_DIR_VARIABLE not in entries:
        return {}
    cert_dir = Path(entries[CERT_DIR_VARIABLE].value)
    derived = {}
    for variable, file_name in DEFAULT_FILE_NAMES.items():
        entry = entries.get(variable)
        if entry is not None and entry.source == "default" and entry.value is None:
            derived[variable] = (str(cert_dir / file_name), f"derived from {CERT_DIR_VARIABLE}")
    return derived
