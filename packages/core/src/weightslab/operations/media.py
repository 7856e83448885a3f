"""Sample media: thumbnails (one or a page of them) and the item behind a sample."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from weightslab.operations._base import InvalidRequest, Unavailable, data_lock, names, text
from weightslab.table import UnknownSamples

log = logging.getLogger("weightslab.operations")

MAX_THUMBNAIL = 8192
MAX_THUMBNAIL_IDS = 512
MAX_ID = 1024


@dataclass(frozen=True)
class ThumbnailsRequest:
    sample_ids: tuple[str, ...]
    split: str = ""  # empty = any split
    size: int = 0  # 0 = WL_DEFAULT_THUMBNAIL_SIZE


@dataclass(frozen=True)
class ThumbnailResult:
    sample_id: str
    split: str = ""
    data: bytes = b""
    mime_type: str = ""
    error: str = ""
    # "" | "invalid" (unknown id, ambiguous split) | "unavailable" (cannot render) | "internal" (plugin failed)
    error_kind: str = ""


@dataclass(frozen=True)
class ThumbnailsResult:
    size: int
    thumbnails: tuple[ThumbnailResult, ...]


def default_thumbnail_size(experiment: Any) -> int:
    config = getattr(experiment, "config", None)
    section = config.get("data_cache") if config is not None and hasattr(config, "get") else None
    return int(getattr(section, "default_thumbnail_size", 720) or 720)


def thumbnail_size(experiment: Any, size: int, field: str = "size") -> int:
    if not 0 <= size <= MAX_THUMBNAIL:
        raise InvalidRequest.of(field, size, f"expected 0 (default) or 1..{MAX_THUMBNAIL}")
    return size or default_thumbnail_size(experiment)


def locate(experiment: Any, sample_ids: tuple[str, ...], split: str) -> dict[str, list[str]]:
    """Split(s) of each known id (one table pass); unknown ids are absent."""
    experiment.recorder.drain()
    table = experiment.table
    wanted = list(dict.fromkeys(sample_ids))
    with data_lock(experiment):
        try:
            rows = table.find(wanted, split or None)
        except UnknownSamples as exc:
            missing = set(exc.missing)
            known = [s for s in wanted if s not in missing]
            rows = table.find(known, split or None) if known else np.zeros(0, dtype=np.int64)
        found: dict[str, list[str]] = {}
        for row in rows.tolist():
            found.setdefault(str(table.sample_id[row]), []).append(str(table.split[row]))
    return found


def render(experiment: Any, split: str, sample_id: str, size: int) -> tuple[bytes, str]:
    """One thumbnail ``(bytes, mime)``; :class:`Unavailable` when it cannot be rendered."""
    if split not in (getattr(experiment, "loaders", None) or {}):
        raise Unavailable(f"split {split!r} has no watched data loader in this process: no media to show")
    try:
        result = experiment.preview(split, sample_id, size)
    except (ValueError, KeyError, IndexError) as exc:
        raise Unavailable(f"no preview for sample {sample_id!r}: {exc}") from None
    if not (isinstance(result, (tuple, list)) and len(result) == 2 and isinstance(result[0], (bytes, bytearray))
            and isinstance(result[1], str)):
        raise TypeError(f"the preview is {type(result).__name__}; expected (bytes, mime_type)")
    return bytes(result[0]), result[1]


def thumbnails(experiment: Any, request: ThumbnailsRequest) -> ThumbnailsResult:
    """Thumbnails of a page of samples, in request order; a failing id gets an error entry."""
    ids = names(request.sample_ids, "sample_ids", max_items=MAX_THUMBNAIL_IDS, max_len=MAX_ID)
    if not ids:
        raise InvalidRequest("sample_ids", f"expected 1..{MAX_THUMBNAIL_IDS} sample ids")
    split = text(request.split, "split")
    size = thumbnail_size(experiment, request.size)
    found = locate(experiment, ids, split)
    out: list[ThumbnailResult] = []
    for sid in ids:  # rendered outside every lock: previews may decode images
        splits = found.get(sid, [])
        if not splits:
            where = f" in split {split!r}" if split else ""
            out.append(ThumbnailResult(sid, error=f"unknown sample id {sid!r}{where}", error_kind="invalid"))
            continue
        if len(splits) > 1:
            out.append(ThumbnailResult(sid, error=f"sample {sid!r} is in several splits ({', '.join(splits)}): "
                                                  "name one", error_kind="invalid"))
            continue
        try:
            data, mime = render(experiment, splits[0], sid, size)
        except Unavailable as exc:
            out.append(ThumbnailResult(sid, splits[0], error=str(exc), error_kind="unavailable"))
            continue
        except Exception as exc:  # one broken sample must not cost the page; the log has the traceback
            log.exception("thumbnail of %s/%s failed", splits[0], sid)
            out.append(ThumbnailResult(sid, splits[0], error=f"internal error rendering the preview "
                                                             f"({type(exc).__name__}); see the server log",
                                       error_kind="internal"))
            continue
        out.append(ThumbnailResult(sid, splits[0], data=data, mime_type=mime))
    return ThumbnailsResult(size=size, thumbnails=tuple(out))


def sample_item(experiment: Any, sample_id: str, split: str = "") -> Any:
    """The dataset item of one sample of a watched loader (loaded outside every lock)."""
    from weightslab.operations.curves import row_of

    _, split = row_of(experiment, sample_id, split)
    if split not in (getattr(experiment, "loaders", None) or {}):
        raise Unavailable(f"split {split!r} has no watched data loader in this process: no media to show")
    try:
        return experiment.load_sample(split, sample_id)
    except (ValueError, KeyError, IndexError) as exc:
        raise Unavailable(f"sample {sample_id!r} of split {split!r} cannot be loaded: {exc}") from None
