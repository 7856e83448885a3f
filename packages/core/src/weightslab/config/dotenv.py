"""Finding and reading a ``.env`` file without touching ``os.environ``.

A ``.env`` can set tokens, the CA and the audit format, so only a file the user controls is
read. The search goes from the current directory upwards and stops at the user's home
directory, at the first directory holding a project marker (``.git``, ``pyproject.toml``),
or before a directory others may write to (``/tmp``): a ``.env`` dropped in a shared parent
is never found. A file owned by another user (root excepted) or writable by group/others is
ignored with a WARNING; named explicitly by ``WEIGHTSLAB_ENV_FILE`` it is an error.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from weightslab.config.fields import expand_path

ENV_FILE_VARIABLE = "WEIGHTSLAB_ENV_FILE"
PROJECT_MARKERS = (".git", "pyproject.toml")
log = logging.getLogger("weightslab.config")


def unsafe_reason(path: Path) -> str | None:
    """Why ``path`` must not be trusted (another owner, group/other-writable), or ``None``.

    POSIX only: Windows reports no owner and every file as writable in ``st_mode``.
    """
    if os.name != "posix":
        return None
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot be checked: {exc.strerror or exc}"
    if hasattr(os, "getuid") and st.st_uid not in (os.getuid(), 0):
        return f"it is owned by another user (uid {st.st_uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"it is writable by group or others (mode {stat.S_IMODE(st.st_mode):o}; chmod go-w {path})"
    return None


def _shared(folder: Path) -> bool:
    """A directory others may write to (``/tmp``): anyone could have put a ``.env`` there."""
    if os.name != "posix":
        return False
    try:
        return bool(folder.stat().st_mode & stat.S_IWOTH)
    except OSError:
        return True


def _search_path(start: Path, home: Path | None) -> list[Path]:
    folders: list[Path] = []
    for folder in (start, *start.parents):
        if _shared(folder):
            break
        folders.append(folder)
        if folder == home or any((folder / marker).exists() for marker in PROJECT_MARKERS):
            break
    return folders


def _home() -> Path | None:
    try:
        return Path.home().resolve()
    except (RuntimeError, OSError):
        return None


def find_env_file(environ: Mapping[str, str], cwd: Path | None = None) -> Path | None:
    """``WEIGHTSLAB_ENV_FILE`` if set, else the first trusted ``.env`` from cwd upwards (see module doc)."""
    from weightslab.config.errors import ConfigError

    explicit = environ.get(ENV_FILE_VARIABLE, "").strip()
    if explicit:
        path = expand_path(explicit)
        if not path.is_absolute():
            path = (cwd or Path.cwd()) / path
        if not path.is_file():
            raise ConfigError(f"{ENV_FILE_VARIABLE}={explicit!r}: expected an existing .env file")
        reason = unsafe_reason(path)
        if reason is not None:
            raise ConfigError(f"{ENV_FILE_VARIABLE}={explicit!r}: refusing to read {path}: {reason}")
        return path
    here = (cwd or Path.cwd()).resolve()
    for folder in _search_path(here, _home()):
        candidate = folder / ".env"
        if candidate.is_file():
            reason = unsafe_reason(candidate)
            if reason is None:
                return candidate
            log.warning("ignoring %s: %s (its settings could weaken TLS, tokens or the audit log)",
                        candidate, reason)
            return None
    return None


def read_env_file(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    values = dotenv_values(path, interpolate=False)
    return {key: value for key, value in values.items() if value is not None}
