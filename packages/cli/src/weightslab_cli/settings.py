"""Settings owned by weightslab-cli."""

from __future__ import annotations

from typing import Annotated

from weightslab.config import Setting, SettingsSection
from weightslab.config import fields as f


class CliSettings(SettingsSection):
    section = "cli"
    owner = "weightslab-cli"

    host: Annotated[str, Setting("CLI_HOST", f.host, "Interface of the CLI inspection server.",
                                 kwarg="cli_host",
                                 weakens=lambda host: not f.is_loopback_host(host, resolve=False))] = "0.0.0.0"
    port: Annotated[int, Setting("CLI_PORT", f.port_or_zero, "Port of the CLI inspection server.",
                                 kwarg="cli_port")] = 50051
