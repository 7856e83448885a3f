"""The plugin manager: built-in plugins plus everything in the ``weightslab`` entry-point group."""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

import pluggy

from weightslab import hookspecs

GROUP = "weightslab"
log = logging.getLogger("weightslab.plugins")
_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


def _plugin_settings(environ: Mapping[str, str]) -> tuple[tuple[str, ...], bool]:
    """Read the two plugin settings before any plugin (and so any section) is known."""
    from weightslab.config.core_settings import PluginSettings
    from weightslab.config.resolve import resolve

    config = resolve([PluginSettings], environ=environ)
    section = config["plugins"]
    return section.disabled_plugins, section.trace_plugins


def create_plugin_manager(environ: Mapping[str, str] | None = None) -> pluggy.PluginManager:
    """A fresh manager with built-ins and entry-point plugins (minus the disabled ones)."""
    environ = os.environ if environ is None else environ
    disabled, trace = _plugin_settings(environ)
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    from weightslab import _builtin

    pm.register(_builtin, name="core")
    for name in disabled:
        pm.set_blocked(name)
    pm.load_setuptools_entrypoints(GROUP)
    if trace:
        pm.trace.root.setwriter(lambda message: log.info("hook trace: %s", message.rstrip()))
        pm.enable_tracing()
    return pm


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, created on first use."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = create_plugin_manager()
        return _manager


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests, or after installing a plugin)."""
    global _manager
    with _lock:
        _manager = None


def plugin_versions(pm: pluggy.PluginManager | None = None) -> list[dict[str, Any]]:
    """Loaded plugins: name, distribution and version."""
    pm = pm or get_plugin_manager()
    rows = []
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        if dist is not None:
            project, version = dist.project_name, dist.version
        else:
            project, version = "weightslab-core", metadata.version("weightslab-core")
        rows.append({"name": name, "distribution": project, "version": version})
    return sorted(rows, key=lambda row: row["name"])


def call_accepting(fn: Callable[..., Any], *args: Any, drop_none: bool = False, **kwargs: Any) -> Any:
    """Call ``fn`` with the keyword arguments it accepts, as pluggy does for hook implementations
    (plugin objects such as agents and controllers may take any subset). With ``drop_none``, a
    ``None`` means "not given", so the callee's default applies."""
    if drop_none:
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(*args, **kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(*args, **kwargs)
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})
