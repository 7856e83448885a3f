"""Hook implementations of weightslab-cli."""

from __future__ import annotations

from typing import Any

from weightslab.hookspecs import hookimpl


@hookimpl
def weightslab_config_sections() -> list[Any]:
    from weightslab_cli.settings import CliSettings

    return [CliSettings]
