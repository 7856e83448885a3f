"""The ``weightslab`` console script. Subcommands of other packages arrive through
the ``weightslab_cli_commands`` hook."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from weightslab_cli.config_cmd import config_group


@click.group(help="WeightsLab: inspect and edit a training run while it trains.")
@click.version_option(package_name="weightslab-cli", prog_name="weightslab")
def cli() -> None:
    pass


@cli.command("plugins", help="List loaded plugins and their versions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_cmd(as_json: bool) -> None:
    from weightslab.plugins import plugin_versions

    rows = plugin_versions()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    from weightslab_cli.console import make_console

    table = Table("plugin", "distribution", "version")
    for row in rows:
        table.add_row(row["name"], row["distribution"], row["version"])
    make_console().print(table)


cli.add_command(config_group)


def _plugin_commands() -> list[Any]:
    from weightslab.plugins import get_plugin_manager

    commands: list[Any] = []
    for result in get_plugin_manager().hook.weightslab_cli_commands():
        commands.extend(result or [])
    return commands


def build_cli() -> click.Group:
    for command in _plugin_commands():
        if command.name not in cli.commands:
            cli.add_command(command)
    return cli


def _configure_cli_logging() -> None:
    """WeightsLab log lines (WEIGHTSLAB_LOG_LEVEL; e.g. WEIGHTSLAB_TRACE_PLUGINS hook traces,
    clamping warnings) go to stderr, so ``--json`` output on stdout stays parseable."""
    from weightslab.config import ConfigError
    from weightslab.config.core_settings import LoggingSettings
    from weightslab.config.resolve import resolve
    from weightslab.log import configure_logging

    try:
        level = resolve([LoggingSettings])["logging"].log_level
    except ConfigError:
        level = "INFO"  # the command itself (e.g. `config check`) reports the bad value
    configure_logging(level, stream=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    _configure_cli_logging()
    group = build_cli()
    try:
        group.main(args=argv, prog_name="weightslab", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
