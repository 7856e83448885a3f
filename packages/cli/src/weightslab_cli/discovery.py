"""The discovery file: where a running CLI server listens, so ``weightslab cli`` finds it.

One file per process: ``~/.weightslab/cli/<pid>.json`` (two runs at once never overwrite or
delete each other's entry); a server started with ``wl.serve(..., cli_discovery_file=PATH)``
(``weightslab demo --discovery-file PATH``) writes PATH instead, and ``weightslab cli
--discovery-file PATH`` reads it. ``weightslab cli`` alone picks the one live entry of the
directory (entries of dead processes are removed), asks when several are live, and
``weightslab cli --list`` shows them. Contents (JSON)::

    {"host": "127.0.0.1", "port": 50052, "tls": true, "auth": true, "pid": 1234,
     "protocol": 1, "experiment": "...", "root_log_dir": "...", "ca_file": "...",
     "token_file": "...", "started_at": "..."}

``ca_file``/``token_file`` are paths (never secrets) that a client may use when it has no
``GRPC_TLS_CA_FILE`` / ``GRPC_AUTH_TOKEN`` of its own. Only the process whose ``pid`` is in
the file removes it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(".weightslab") / "cli"
LEGACY_RELATIVE = Path(".weightslab") / "cli.json"  # one shared file, written by older servers


def default_discovery_dir() -> Path:
    return Path("~").expanduser() / DEFAULT_DIR


def default_discovery_file(pid: int | None = None) -> Path:
    """This process's entry (``<dir>/<pid>.json``)."""
    return default_discovery_dir() / f"{os.getpid() if pid is None else pid}.json"


def live_entries(directory: Path | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """``(path, record)`` of every entry whose process is alive, oldest first. Entries of dead
    processes are removed (they would otherwise be picked forever); unreadable ones are skipped."""
    directory = default_discovery_dir() if directory is None else directory
    candidates = sorted(directory.glob("*.json")) if directory.is_dir() else []
    legacy = directory.parent / LEGACY_RELATIVE.name
    if legacy.is_file():
        candidates.append(legacy)
    out: list[tuple[Path, dict[str, Any]]] = []
    for path in candidates:
        try:
            info = read_discovery(path)
        except (OSError, ValueError):
            continue
        if not pid_alive(info.get("pid")):
            if path.parent == directory:  # stale: its process is gone
                path.unlink(missing_ok=True)
            continue
        out.append((path, info))
    out.sort(key=lambda item: str(item[1].get("started_at", "")))
    return out


def write_discovery(path: Path, info: dict[str, Any]) -> None:
    """Write atomically (readers never see half a file)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_discovery(path: Path) -> dict[str, Any]:
    """The discovery record; ``FileNotFoundError`` / ``ValueError`` when missing or invalid."""
    path = Path(path).expanduser()
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("port"), int):
        raise ValueError(f"{path}: not a WeightsLab CLI discovery file")
    return data


def remove_discovery_if_owner(path: Path, *, pid: int | None = None, port: int | None = None) -> bool:
    """Remove ``path`` only if it names this process (and ``port`` when given)."""
    pid = os.getpid() if pid is None else pid
    try:
        data = read_discovery(path)
    except (OSError, ValueError):
        return False
    if data.get("pid") != pid or (port is not None and data.get("port") != port):
        return False
    try:
        Path(path).expanduser().unlink()
    except FileNotFoundError:
        return False
    return True


def pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
