"""Load the effective configuration of every installed plugin."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pluggy

from weightslab.config import Config, resolve
from weightslab.config.section import SettingsSection


def all_sections(pm: pluggy.PluginManager) -> list[type[SettingsSection]]:
    """Sections of every plugin in a stable order: the core first, then by plugin name.

    The order decides the listed owner of a variable two packages read (the first one).
    """
    impls = sorted(pm.hook.weightslab_config_sections.get_hookimpls(),
                   key=lambda impl: (impl.plugin_name != "core", impl.plugin_name))
    sections: list[type[SettingsSection]] = []
    for impl in impls:
        sections.extend(impl.function() or [])  # type: ignore[arg-type]
    return sections


def load_config(
    *,
    kwargs: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    pm: pluggy.PluginManager | None = None,
    validate: bool = True,
) -> Config:
    """Resolve every section of every plugin, then let plugins validate (``weightslab_configure``)."""
    from weightslab.plugins import get_plugin_manager

    pm = pm or get_plugin_manager()
    result = resolve(all_sections(pm), kwargs=kwargs, config=config, environ=environ, cwd=cwd)
    if validate:
        pm.hook.weightslab_configure(config=result)
    return result
