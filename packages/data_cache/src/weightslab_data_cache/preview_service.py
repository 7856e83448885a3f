"""Previews of an experiment's samples: the cache, the renderer and the settings together.

The gRPC/CLI layer creates one per experiment with a ``load_sample(sample_id)`` callable
and asks ``get(sample_id, size)``; ``start(sample_ids)`` builds the overview in the
background when ``WL_PRELOAD_IMAGE_OVERVIEW`` is on (otherwise previews render on first
request).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from weightslab_data_cache.preview_cache import PreviewCache

log = logging.getLogger("weightslab.data_cache")


def render_preview(sample: Any, size: int = 720, **options: Any) -> tuple[bytes, str]:
    """:func:`weightslab_data_cache.previews.render_preview`, imported on the first render:
    serving creates a preview service for every experiment, PIL loads only once one is drawn."""
    from weightslab_data_cache.previews import render_preview as render

    return render(sample, size, **options)


def _is_vector(sample: Any) -> bool:
    """Whether a dataset item's input (``(input, label, ...)``, or the item itself) is 1-D."""
    if isinstance(sample, tuple | list) and 2 <= len(sample) <= 4:
        sample = sample[0]
    shape = getattr(sample, "shape", None)
    return shape is not None and len(shape) == 1


class PreviewService:
    def __init__(self, load_sample: Callable[[Any], Any], *, size: int = 720, max_entries: int = 2000,
                 max_bytes: int = 512 << 20, warmup_wait_ms: int = 100, preload: bool = True,
                 chunk_size: int = 0, preview_fn: Callable[[Any], Any] | None = None,
                 renderer: Callable[..., tuple[bytes, str]] = render_preview,
                 busy: Callable[[], bool] | None = None) -> None:
        self.load_sample = load_sample
        self.size = size
        self.preload = preload
        self.chunk_size = chunk_size
        self.preview_fn = preview_fn
        self.renderer = renderer
        self.busy = busy  # true while the training loop steps: the overview waits (see start_warmup)
        self.cache = PreviewCache(max_entries, max_bytes, warmup_wait_ms)

    @classmethod
    def from_settings(cls, settings: Any, load_sample: Callable[[Any], Any], **kwargs: Any) -> PreviewService:
        """Build from a resolved ``DataCacheSettings`` (``config["data_cache"]``)."""
        return cls(load_sample, size=settings.default_thumbnail_size,
                   max_entries=settings.max_preview_cache_size,
                   warmup_wait_ms=settings.preview_cache_warmup_wait_ms,
                   preload=settings.preload_image_overview, chunk_size=settings.batch_chunk_size, **kwargs)

    def render(self, sample_id: Any, size: int | None = None) -> tuple[bytes, str]:
        return self.renderer(self.load_sample(sample_id), size or self.size, preview_fn=self.preview_fn)

    def get(self, sample_id: Any, size: int | None = None) -> tuple[bytes, str]:
        size = size or self.size
        return self.cache.get((sample_id, size), lambda: self.render(sample_id, size))

    def start(self, sample_ids: Iterable[Any]) -> bool:
        """Start the background overview when preloading is on; returns whether it started."""
        if not self.preload:
            return False
        self.cache.start_warmup(((i, self.size) for i in sample_ids), self._warm,
                                chunk_size=self.chunk_size, busy=self.busy)
        return True

    def _warm(self, key: tuple[Any, int]) -> tuple[bytes, str]:
        """One overview thumbnail; the overview is of images: it stops at a 1-D sample (tabular
        rows: 2,000 line plots would hold tens of MB and compete with queries while drawn, for
        little a person looks at), whose previews render on request."""
        sample = self.load_sample(key[0])
        if self.preview_fn is None and _is_vector(sample):
            log.info("data cache: samples are 1-D vectors: their previews are drawn on request, "
                     "no thumbnail overview is built in the background")
            self.cache.stop_warmup()  # from the warm-up thread: it ends after this thumbnail
        return self.renderer(sample, key[1], preview_fn=self.preview_fn)

    def close(self) -> None:
        self.cache.stop_warmup()

    stop = close  # a service handle (experiment.services) is stopped with stop()
