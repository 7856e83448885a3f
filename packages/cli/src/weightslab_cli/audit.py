"""Audit trail of the CLI server's mutating commands.

The gRPC server package owns the experiment's audit log (``weightslab_grpc_server.audit``)
and publishes it in ``experiment.services["audit"]``; the CLI server hands its records to
that log (creating it through ``get_audit_log`` when the gRPC server is installed but not
serving) so that there is exactly one audit file per experiment. Without that package,
:func:`audit_event` appends the same record itself to ``<root_log_dir>/audit.jsonl``
(``AUDIT_LOG_FORMAT=json``) or ``audit.csv`` (``csv``); ``none`` writes nothing.

Record (one JSON object per line)::

    {"ts": "2025-01-01T12:00:00.000000Z", "action": "tag", "params": {...},
     "outcome": "ok" | "error", "error": "...", "result": {...},
     "caller": {"transport": "cli", "peer": "127.0.0.1:5123", "token_fingerprint": "ab12cd34"}}

Tokens never appear in a record, only their fingerprint.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("weightslab.cli.audit")

_write_lock = threading.Lock()
CSV_FIELDS = ("ts", "action", "outcome", "error", "params", "result", "caller", "before", "after")
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _jsonable(value: Any) -> Any:
    from weightslab_cli.protocol import jsonable

    return jsonable(value)


def make_record(action: str, *, params: Mapping[str, Any] | None = None, outcome: str = "ok",
                error: str | None = None, result: Mapping[str, Any] | None = None,
                caller: Mapping[str, Any] | None = None, before: Any = None, after: Any = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ts": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": action,
        "params": _jsonable(dict(params or {})),
        "outcome": outcome,
        "caller": _jsonable(dict(caller or {})),
    }
    if error is not None:
        record["error"] = error
    if result is not None:
        record["result"] = _jsonable(dict(result))
    if before is not None:
        record["before"] = _jsonable(before)
    if after is not None:
        record["after"] = _jsonable(after)
    return record


def audit_format(experiment: Any) -> str:
    try:
        return str(experiment.config["logging"].audit_log_format)
    except (KeyError, AttributeError, TypeError):
        return "json"


def audit_path(experiment: Any, fmt: str | None = None) -> Path | None:
    """The fallback audit file of ``experiment`` (``None`` for ``AUDIT_LOG_FORMAT=none``)."""
    fmt = fmt or audit_format(experiment)
    if fmt == "none":
        return None
    return Path(experiment.root_log_dir) / ("audit.csv" if fmt == "csv" else "audit.jsonl")


def _append(path: Path, data: bytes) -> None:
    """One ``write`` on an ``O_APPEND`` descriptor, then fsync: records never interleave or tear."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_record(experiment: Any, record: Mapping[str, Any]) -> Path | None:
    """Append ``record`` to the fallback audit file in ``AUDIT_LOG_FORMAT``."""
    fmt = audit_format(experiment)
    path = audit_path(experiment, fmt)
    if path is None:
        return None
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        with _write_lock:
            header = not path.exists() or path.stat().st_size == 0
            if header:
                writer.writerow(CSV_FIELDS)
            writer.writerow([_csv_cell(record.get(f)) for f in CSV_FIELDS])
            _append(path, buf.getvalue().encode())
    else:
        line = json.dumps(record, sort_keys=True, allow_nan=False) + "\n"
        with _write_lock:
            _append(path, line.encode())
    return path


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
    return "'" + text if text.startswith(_CSV_FORMULA_START) else text  # no spreadsheet formulas


def _published_logger(experiment: Any) -> Any:
    services = getattr(experiment, "services", None)
    logger = services.get("audit") if isinstance(services, dict) else None
    if logger is not None:
        return logger
    try:
        from weightslab_grpc_server.audit import get_audit_log
    except ImportError:
        return None
    return get_audit_log(experiment)


def audit_event(experiment: Any, action: str, **fields: Any) -> None:
    """Record one interaction; an audit failure is logged, never raised to the caller."""
    record = make_record(action, **fields)
    logger = _published_logger(experiment)
    try:
        if logger is not None:
            for method in ("record", "log_record", "write"):
                fn = getattr(logger, method, None)
                if callable(fn):
                    fn(record)
                    return
        write_record(experiment, record)
    except Exception:
        log.exception("writing the audit record for %s failed", action)
