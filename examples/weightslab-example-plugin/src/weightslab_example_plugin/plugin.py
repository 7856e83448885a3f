"""Hook implementations: the module named by the `weightslab` entry point.

Keep module import cheap (no heavy imports at top level): the plugin manager imports every
plugin whenever WeightsLab loads its configuration.
"""

from __future__ import annotations

import logging
import weakref
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


# -- per-step work: keep it cheap -----------------------------------------------------------
# The training thread calls weightslab_step_end after every optimizer step, so the hook only
# updates a counter; the file is written once, at shutdown.
_steps: weakref.WeakKeyDictionary[Any, list[int]] = weakref.WeakKeyDictionary()


@hookimpl
def weightslab_step_end(experiment: Any, step: int) -> None:
    """Count the steps of ``experiment`` and remember the last one (no I/O here)."""
    seen = _steps.setdefault(experiment, [0, 0])
    seen[0] += 1
    seen[1] = step


def steps_seen(experiment: Any) -> tuple[int, int]:
    """``(steps counted, last step)`` of ``experiment`` so far."""
    count, last = _steps.get(experiment, (0, 0))
    return count, last


@hookimpl
def weightslab_shutdown(experiment: Any) -> None:
    """Append the step summary to the greeting file (when configured)."""
    count, last = steps_seen(experiment)
    settings = experiment.config["example"] if "example" in experiment.config else None
    if settings is None or settings.greeting_file is None:
        return
    with settings.greeting_file.open("a", encoding="utf-8") as out:
        out.write(f"{count} steps, last step {last}\n")


# -- a subcommand: `weightslab example-greet` ----------------------------------------------
@hookimpl
def weightslab_cli_commands() -> list[Any]:
    """Add ``weightslab example-greet``; click is imported here, not at module import."""
    from weightslab_example_plugin.cli import greet_command

    return [greet_command]


# -- previews: render what this plugin knows, pass the rest --------------------------------
@hookimpl(tryfirst=True)  # asked before the data cache's image renderer
def weightslab_preview(sample: Any, size: int, config: Any) -> tuple[bytes, str] | None:
    """Text samples become a ``text/plain`` preview of at most ``size`` characters (0: 64).

    Anything else returns ``None``: the hook is first-result, so the next plugin (the data
    cache's image renderer) gets the sample.
    """
    if not isinstance(sample, str):
        return None
    limit = size or 64
    text = sample if len(sample) <= limit else sample[: limit - 1] + "…"
    return text.encode("utf-8"), "text/plain; charset=utf-8"
