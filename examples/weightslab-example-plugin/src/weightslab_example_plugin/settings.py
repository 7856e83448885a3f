"""The settings this plugin owns: they appear in `weightslab config show` with owner
``weightslab-example-plugin`` and are read from the environment or `.env` like the core's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from weightslab.config import Setting, SettingsSection
from weightslab.config import fields as f

OWNER = "weightslab-example-plugin"


class ExampleSettings(SettingsSection):
    section = "example"
    owner = OWNER

    greeting: Annotated[str, Setting(
        "EXAMPLE_GREETING", f.text, "Line the plugin logs when an experiment starts.")] = "hello from the example plugin"
    greeting_file: Annotated[Path | None, Setting(
        "EXAMPLE_GREETING_FILE", f.path,
        "File the greeting is also appended to (unset = log only).")] = None
