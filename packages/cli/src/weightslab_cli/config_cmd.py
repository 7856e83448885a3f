"""``weightslab config show|check``."""

from __future__ import annotations

import json

import click


@click.group("config", help="Show or check the effective configuration.")
def config_group() -> None:
    pass


@config_group.command("show", help="Every setting of every plugin, its value and its source.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show(as_json: bool) -> None:
    from weightslab.config import ConfigError
    from weightslab.settings import load_config

    try:
        config = load_config()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    data = config.as_json()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("variable", "value", "source", "owner", title="WeightsLab configuration")
    for name, row in data.items():
        value = "unset" if row["value"] is None else str(row["value"])
        table.add_row(name, value, row["source"], row["owner"])
    console = Console()
    console.print(table)
    console.print(f".env file: {config.env_file or 'none found'}")


@config_group.command("check", help="Exit non-zero with the error when the configuration is invalid.")
def check() -> None:
    from weightslab.config import ConfigError
    from weightslab.settings import load_config

    try:
        load_config()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("configuration OK")
