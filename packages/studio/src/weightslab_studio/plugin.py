"""Hook implementations of weightslab-studio."""

from __future__ import annotations

from typing import Any

from weightslab.hookspecs import hookimpl


@hookimpl
def weightslab_config_sections() -> list[Any]:
    from weightslab_studio.settings import StudioSettings

    return [StudioSettings]


@hookimpl
def weightslab_cli_commands() -> list[Any]:
    from weightslab_studio.cli import studio_command

    return [studio_command]
