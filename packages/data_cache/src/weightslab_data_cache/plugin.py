"""Hook implementations of weightslab-data-cache."""

from __future__ import annotations

from typing import Any

from weightslab.hookspecs import hookimpl


@hookimpl
def weightslab_config_sections() -> list[Any]:
    from weightslab_data_cache.settings import DataCacheSettings

    return [DataCacheSettings]
