"""The store folder: immutable segment files plus ``MANIFEST.json``, the only commit point.

A segment becomes part of the store only when a manifest listing it has been atomically
renamed into place (write ``MANIFEST.json.tmp``, fsync, ``os.replace``, fsync the folder).
A file not listed in the manifest (a write or a compaction cut short) is ignored by
readers and deleted by the next writer.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from weightslab.store import StoreLockedError as CoreStoreLockedError

log = logging.getLogger("weightslab.data_cache")

MANIFEST = "MANIFEST.json"
LOCK = "LOCK"
_SEGMENT = re.compile(r"^seg-(\d+)\.h5$")


@dataclass
class SegmentInfo:
    file: str
    level: int
    seq: int


@dataclass
class Manifest:
    segments: list[SegmentInfo] = field(default_factory=list)
    next_seq: int = 0
    format: int = 1

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        segments = [SegmentInfo(**s) for s in raw["segments"]]
        for info in segments:
            # Joined to the folder later: only a plain segment name, never a path out of the folder.
            if not isinstance(info.file, str) or not _SEGMENT.match(info.file):
                raise ValueError(f"{path.name}: segment entry {info.file!r} is not a segment file name "
                                 "(seg-<n>.h5 inside the store folder); refusing to open the store")
        return cls(segments, int(raw["next_seq"]), int(raw.get("format", 1)))

    def write(self, folder: Path) -> None:
        """Atomically replace the folder's manifest (durable when this returns)."""
        tmp = folder / (MANIFEST + ".tmp")
        data = json.dumps(asdict(self), indent=0).encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, folder / MANIFEST)
        fsync_dir(folder)

    def new_segment(self, level: int = 0) -> SegmentInfo:
        info = SegmentInfo(f"seg-{self.next_seq:08d}.h5", level, self.next_seq)
        self.next_seq += 1
        return info


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def remove_orphans(folder: Path, manifest: Manifest) -> list[str]:
    """Delete segment files the manifest does not list (only a writer holding the lock may)."""
    listed = {s.file for s in manifest.segments}
    removed = []
    for path in folder.iterdir():
        if (_SEGMENT.match(path.name) and path.name not in listed) or path.name == MANIFEST + ".tmp":
            path.unlink(missing_ok=True)
            removed.append(path.name)
    if removed:
        log.info("data cache %s: removed %d uncommitted file(s) left by an interrupted write", folder,
                 len(removed))
    return removed


class StoreLockedError(CoreStoreLockedError):
    """The folder's writer lock is held (by another process, or another store of this one)."""


def acquire_lock(folder: Path) -> IO[bytes] | None:
    """Exclusive writer lock (released by the OS when the process dies, even on kill -9)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        return None
    handle = open(folder / LOCK, "a+b")  # noqa: SIM115 - kept open while the store lives
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pid = _holder_pid(handle)
        handle.close()
        holder = f" (process {pid})" if pid else ""
        raise StoreLockedError(f"sample store {folder} is already open for writing by another store "
                               f"instance or process{holder}; close it first (or read it with read_store())",
                               pid=pid) from None
    try:  # the holder's pid, for the message another process gets
        handle.truncate(0)
        handle.write(str(os.getpid()).encode())
        handle.flush()
    except OSError:
        pass
    return handle


def _holder_pid(handle: IO[bytes]) -> int | None:
    try:
        handle.seek(0)
        text = handle.read(32).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def release_lock(handle: IO[bytes] | None) -> None:
    if handle is None:
        return
    try:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()
