"""The key of every fingerprint: one secret per user, so fingerprints match across processes.

A fingerprint (HMAC-SHA256 under this key, 16 hex digits) lets a person see that the token in
``weightslab config show`` is the one in the server's log or audit record, without the log
being usable to test guesses of a short token offline: that needs the key, which lives in
``~/.weightslab/fingerprint.key`` (0600, 32 random bytes, made on first use). When that file
cannot be used (no home, read-only, owned by someone else, readable by others) a random key for
this process only is used instead: fingerprints then match within the process only.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

KEY_BYTES = 32
KEY_FILE = Path(".weightslab") / "fingerprint.key"
log = logging.getLogger("weightslab.config")

_lock = threading.Lock()
_keys: dict[Path, bytes] = {}  # by key file: HOME may change within a process (tests)


def key_path() -> Path:
    return Path.home() / KEY_FILE


def _trusted(st: os.stat_result) -> bool:
    if os.name != "posix":  # no owner and no meaningful mode bits to check
        return stat.S_ISREG(st.st_mode) and st.st_size == KEY_BYTES
    own = st.st_uid == os.getuid()
    return own and stat.S_ISREG(st.st_mode) and not st.st_mode & 0o077 and st.st_size == KEY_BYTES


def _load_or_create(path: Path) -> bytes:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made earlier (or by a concurrent process): read it below
    else:
        try:
            os.write(fd, os.urandom(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        st = os.fstat(fd)
        if not _trusted(st):
            raise PermissionError(f"{path}: expected {KEY_BYTES} bytes, mode 0600, owned by this user")
        data = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != KEY_BYTES:
        raise ValueError(f"{path}: expected {KEY_BYTES} bytes")
    return data


def fingerprint_key() -> bytes:
    """The per-user fingerprint key (a per-process random key when the file is unusable)."""
    try:
        path = key_path()
    except (RuntimeError, KeyError):  # no home directory at all
        path = Path("/nonexistent") / KEY_FILE
    with _lock:
        key = _keys.get(path)
        if key is None:
            try:
                key = _load_or_create(path)
            except (OSError, RuntimeError, ValueError) as exc:
                log.debug("fingerprint key file unusable (%s): fingerprints hold within this process only", exc)
                key = os.urandom(KEY_BYTES)
            _keys[path] = key
        return key
