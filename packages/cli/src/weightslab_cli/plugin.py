"""Hook implementations of weightslab-cli."""

from __future__ import annotations

from typing import Any

from weightslab.hookspecs import hookimpl


@hookimpl
def weightslab_config_sections() -> list[Any]:
    from weightslab_cli.settings import CliSettings

    return [CliSettings]


@hookimpl(trylast=True)  # after the gRPC server: its port is known, so a clash can be avoided
def weightslab_serve(experiment: Any, config: Any) -> Any:
    """Start the CLI inspection server when ``wl.serve(serving_cli=True)``."""
    if not experiment.serve_options.get("cli"):
        return None
    from weightslab_cli.server import start_cli_server

    return start_cli_server(experiment, config)


@hookimpl
def weightslab_cli_commands() -> list[Any]:
    from weightslab_cli.client import cli_command
    from weightslab_cli.demo import demo_command
    from weightslab_cli.label_commands import export_group

    return [cli_command, demo_command, export_group]
