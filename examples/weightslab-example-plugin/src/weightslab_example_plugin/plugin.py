"""Hook implementations: the module named by the `weightslab` entry point.

Keep module import cheap (no heavy imports at top level): the plugin manager imports every
plugin whenever WeightsLab loads its configuration.
"""

from __future__ import annotations

import logging
from typing import Any

from weightslab.hookspecs import hookimpl

log = logging.getLogger("weightslab.example_plugin")


@hookimpl
def weightslab_config_sections() -> list[Any]:
    """Contribute a settings section; the core resolves it (kwarg > env > .env > default)."""
    from weightslab_example_plugin.settings import ExampleSettings

    return [ExampleSettings]


@hookimpl
def weightslab_configure(config: Any) -> None:
    """Start-up validation: fail with a message naming the variable."""
    from weightslab.config import ConfigError

    if "example" in config and not config["example"].greeting:
        raise ConfigError("EXAMPLE_GREETING='': expected a non-empty greeting")


@hookimpl
def weightslab_experiment_started(experiment: Any) -> None:
    """React to a lifecycle event: log the greeting and, if configured, append it to a file."""
    settings = experiment.config["example"]
    line = f"{settings.greeting} (experiment {experiment.name}, root log dir {experiment.root_log_dir})"
    log.info(line)
    if settings.greeting_file is not None:
        settings.greeting_file.parent.mkdir(parents=True, exist_ok=True)
        with settings.greeting_file.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
