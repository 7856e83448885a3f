"""Hook implementations of weightslab-data-cache."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from weightslab.hookspecs import hookimpl

log = logging.getLogger("weightslab.data_cache")

STORE_DIRNAME = "store"
# Settings seen by weightslab_configure: defaults for hooks that receive no config.
_configured: Any = None


def _settings(config: Any) -> Any:
    from weightslab_data_cache.settings import DataCacheSettings

    section = None
    if config is not None:
        try:
            section = config.get("data_cache") if hasattr(config, "get") else None
        except Exception:  # pragma: no cover - defensive: any mapping-like config
            section = None
    if section is not None:
        return section
    if _configured is not None:
        return _configured
    # A hook without a config (weightslab_preview) before any weightslab_configure in this
    # process, e.g. Experiment.preview without wl.serve: the process environment and .env,
    # never the bare built-in defaults (a set WL_DEFAULT_THUMBNAIL_SIZE must count here too).
    from weightslab.config import resolve

    return resolve([DataCacheSettings])["data_cache"]


@hookimpl
def weightslab_config_sections() -> list[Any]:
    from weightslab_data_cache.settings import DataCacheSettings

    return [DataCacheSettings]


@hookimpl
def weightslab_configure(config: Any) -> None:
    global _configured
    _configured = _settings(config)


@hookimpl
def weightslab_sample_store(experiment: Any, config: Any) -> Any:
    """The experiment's HDF5 store: ``<root_log_dir>/store/`` (manifest + segment files)."""
    from weightslab_data_cache.h5store import H5SampleStore, open_store_at

    settings = _settings(config)
    path = Path(experiment.root_log_dir) / STORE_DIRNAME
    previous = open_store_at(path)
    if previous is not None:  # e.g. an experiment re-created in the same process: the newest wins
        log.warning("data cache: closing the store already open on %s for a new experiment", path)
        previous.close()
    return H5SampleStore(path, chunk_size=settings.batch_chunk_size,
                         save_predictions=settings.save_predictions_in_h5)


_STARTING_S = 5.0  # a first step that takes longer than this no longer holds the overview back
_SERVE_GRACE_S = 2.0  # before any training batch, the overview starts this long after serve()
_READ_QUIET_S = 0.25  # the overview resumes this long after the last query


@hookimpl
def weightslab_serve(experiment: Any, config: Any) -> Any:
    """Thumbnail cache for the API; warms the overview when WL_PRELOAD_IMAGE_OVERVIEW=1."""
    from weightslab_data_cache.preview_service import PreviewService

    if "previews" in experiment.services:
        return None
    settings = _settings(config)
    served = time.monotonic()
    service = PreviewService.from_settings(settings, lambda key: experiment.load_sample(*key),
                                           busy=lambda: _stepping(experiment, served))
    experiment.services["previews"] = service
    keys = [(split, sid) for split, sid in experiment.sample_keys(limit=settings.max_preview_cache_size)]
    if service.start(keys):
        log.info("data cache: building the thumbnail overview of %d samples in the background", len(keys))
    return service


def _stepping(experiment: Any, served: float | None = None) -> bool:
    """Whether the overview should wait: the training loop is making steps, or starting (its first
    batch fetched in the last 5 s, no step yet; before any batch, the first 2 s after ``served``),
    or a query read the table in the last 0.25 s. It renders during a pause, an idle loop or after
    the loop, between queries; thumbnails asked for meanwhile still render on demand."""
    activity = getattr(experiment, "activity", None)
    if activity is None:
        return False
    last_read_age = getattr(experiment, "last_read_age", None)
    read = last_read_age() if last_read_age is not None else None
    if read is not None and read < _READ_QUIET_S:
        return True
    state, age = activity()
    if state == "running" and age is None:
        first_batch_age = getattr(experiment, "first_batch_age", None)
        started = first_batch_age() if first_batch_age is not None else None
        if started is None:  # no loop yet: one usually starts right after serve()
            return served is not None and time.monotonic() - served < _SERVE_GRACE_S
        return started < _STARTING_S
    return state == "running" and age is not None


@hookimpl
def weightslab_preview(sample: Any, size: int, config: Any) -> Any:
    """``(bytes, mime)`` thumbnail; ``size`` falsy = ``WL_DEFAULT_THUMBNAIL_SIZE``."""
    from weightslab_data_cache.previews import NotRenderable, render_preview

    try:
        return render_preview(sample, size or _settings(config).default_thumbnail_size)
    except NotRenderable:
        return None  # let another plugin (or the caller) handle it


@hookimpl
def weightslab_shutdown(experiment: Any) -> None:
    """Flush and close the experiment's store (the preview service is stopped with the other
    services, as ``experiment.services["previews"]``)."""
    from weightslab_data_cache.h5store import H5SampleStore

    store = getattr(experiment, "store", None)
    if isinstance(store, H5SampleStore):
        store.close()
