"""Sample media for full-resolution streaming."""

from __future__ import annotations

import io
import mimetypes
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from weightslab_grpc_server.errors import precondition

NPY_MIME = "application/x-npy"


def media_of(item: Any) -> Any:
    """The media of a dataset item: the input of ``(input, target, ...)``, else the item."""
    if isinstance(item, (tuple, list)) and item:
        return item[0]
    return item


def media_source(value: Any) -> tuple[str, Any]:
    """``(mime type, bytes or Path)`` of a sample's raw media.

    Arrays and tensors travel as ``.npy`` (``allow_pickle=False``); ``bytes`` as they are; a
    ``str``/``Path`` naming an existing file (as datasets of image paths hold) as that file.
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "application/octet-stream", bytes(value)
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if path.is_file():
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return mime, path
        raise precondition("the sample's media is text, not a file that exists on the server")
    if hasattr(value, "save") and hasattr(value, "mode") and hasattr(value, "size"):  # PIL image
        buf = io.BytesIO()
        value.save(buf, format="PNG")
        return "image/png", buf.getvalue()
    if isinstance(value, (np.ndarray, np.generic, int, float)) and not isinstance(value, bool):
        arr = np.asarray(value)
        if arr.dtype.kind == "O":
            raise precondition("the sample's media is an object array; it cannot be sent")
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        return NPY_MIME, buf.getvalue()
    raise precondition(f"the sample's media ({type(value).__name__}) cannot be streamed")


def iter_chunks(source: bytes | Path, chunk: int) -> Iterator[tuple[int, bytes, int]]:
    """``(offset, data, total)`` chunks of bytes or of a file."""
    if isinstance(source, bytes):
        total = len(source)
        if total == 0:
            yield 0, b"", 0
        for offset in range(0, total, chunk):
            yield offset, source[offset : offset + chunk], total
        return
    with open(source, "rb") as handle:
        total = os.fstat(handle.fileno()).st_size
        offset = 0
        while True:
            data = handle.read(chunk)
            if not data:
                if offset == 0:
                    yield 0, b"", 0
                return
            yield offset, data, total
            offset += len(data)
