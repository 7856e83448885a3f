"""Settings owned by weightslab-data-cache."""

from __future__ import annotations

from typing import Annotated

from weightslab.config import Setting, SettingsSection
from weightslab.config import fields as f


class DataCacheSettings(SettingsSection):
    section = "data_cache"
    owner = "weightslab-data-cache"

    save_predictions_in_h5: Annotated[bool, Setting(
        "WEIGHTSLAB_SAVE_PREDICTIONS_IN_H5", f.boolean, "Persist per-sample predictions in HDF5.")] = True
    max_preview_cache_size: Annotated[int, Setting(
        "WL_MAX_PREVIEW_CACHE_SIZE", f.positive_int, "Max entries of the preview cache (LRU).")] = 2000
    preload_image_overview: Annotated[bool, Setting(
        "WL_PRELOAD_IMAGE_OVERVIEW", f.boolean,
        "Build the thumbnail overview of image samples at start-up (1-D samples: on request).")] = True
    default_thumbnail_size: Annotated[int, Setting(
        "WL_DEFAULT_THUMBNAIL_SIZE", f.positive_int, "Longest edge of thumbnails in pixels.")] = 720
    batch_chunk_size: Annotated[int, Setting(
        "WL_BATCH_CHUNK_SIZE", f.non_negative_int, "Samples per processing chunk; 0 = whole batch.")] = 0
    preview_cache_warmup_wait_ms: Annotated[int, Setting(
        "WL_PREVIEW_CACHE_WARMUP_WAIT_MS", f.clamped_int(0, 1000),
        "Wait for warm-up before rendering a missing preview.")] = 100
    max_points_per_sample: Annotated[int, Setting(
        "WL_MAX_POINTS_PER_SAMPLE", f.non_negative_int,
        "Max points of a break-by-slices curve; 0 = no cap.")] = 200
