"""Built-in plugin: the core's own settings and fallbacks, on the same hooks plugins use."""

from __future__ import annotations

from typing import Any

from weightslab.hookspecs import hookimpl


@hookimpl
def weightslab_config_sections() -> list[Any]:
    from weightslab.config.core_settings import CORE_SECTIONS

    return list(CORE_SECTIONS)


@hookimpl(trylast=True)
def weightslab_sample_store(experiment: Any) -> Any:
    from weightslab.store import MemorySampleStore

    return MemorySampleStore()
