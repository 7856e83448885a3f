"""``weightslab example-greet``: a subcommand contributed through ``weightslab_cli_commands``."""

from __future__ import annotations

import click


@click.command("example-greet")
@click.option("--name", default="", help="Who to greet (default: nobody in particular).")
def greet_command(name: str) -> None:
    """Print the configured EXAMPLE_GREETING (environment, .env or default)."""
    from weightslab.settings import load_config

    greeting = load_config(validate=False)["example"].greeting
    click.echo(f"{greeting}, {name}" if name else greeting)
