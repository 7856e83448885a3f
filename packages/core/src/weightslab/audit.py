"""The experiment's audit trail: one append-only file per experiment.

Every mutating interaction that arrives through gRPC or the CLI server (both use :func:`get_audit_log`,
so there is one file) is appended to ``<root_log_dir>/audit.jsonl``
(``AUDIT_LOG_FORMAT=json``, one JSON object per line) or ``<root_log_dir>/audit.csv``
(``csv``, header written once) — or nowhere (``none``). A record::

    {"ts": "2026-01-01T12:00:00.000000Z", "action": "set_hyperparameter",
     "params": {"key": "lr", "value": 0.1}, "outcome": "ok" | "error" | "denied",
     "error": "...", "result": {...}, "before": 0.01, "after": 0.1,
     "caller": {"transport": "grpc", "peer": "ipv4:127.0.0.1:5123",
                "client_subject": "CN=envoy-client", "token_fingerprint": "ab12cd34"}}

Each record is one ``write`` on an ``O_APPEND`` descriptor followed by ``fsync`` (crash-safe:
a record is either complete on disk or absent; records never interleave). The file is never
rewritten or truncated. Secrets are never written: parameters whose name looks like a secret
(``api_key``, ``token``, ``password``...) are replaced by their fingerprint.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from weightslab.secrets import fingerprint, is_secret_name, scrub

log = logging.getLogger("weightslab.audit")

FORMATS = ("json", "csv", "none")
FILE_NAMES = {"json": "audit.jsonl", "csv": "audit.csv"}
CSV_FIELDS = ("ts", "action", "outcome", "error", "params", "result", "caller", "before", "after")
_MAX_TEXT = 4096
_MAX_ITEMS = 200
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_services_lock = threading.Lock()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _is_secret(name: str) -> bool:
    """The one rule of :mod:`weightslab.secrets` (plus ``authorization``, a header carrying a token)."""
    return is_secret_name(name) or name.lower() == "authorization"


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy: finite numbers, text (bounded), lists and mappings; secrets fingerprinted."""
    if depth > 8:
        return "..."
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + f"...(+{len(value) - _MAX_TEXT} chars)"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for i, (k, v) in enumerate(value.items()):
            if i >= _MAX_ITEMS:
                out["..."] = f"{len(value) - _MAX_ITEMS} more"
                break
            key = str(k)
            if _is_secret(key) and v not in (None, ""):
                out[key] = f"fingerprint {fingerprint(str(v))}"
            else:
                out[key] = jsonable(v, depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        shown = [jsonable(v, depth + 1) for v in items[:_MAX_ITEMS]]
        if len(items) > _MAX_ITEMS:
            shown.append(f"... ({len(items) - _MAX_ITEMS} more)")
        return shown
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return jsonable(item(), depth + 1)
        except Exception:
            pass
    return jsonable(str(value), depth + 1)


def make_record(action: str, *, params: Mapping[str, Any] | None = None, outcome: str = "ok",
                error: str | None = None, result: Any = None, caller: Mapping[str, Any] | None = None,
                before: Any = None, after: Any = None) -> dict[str, Any]:
    """A record with the common fields (same shape as the CLI server's records).

    An edit of a key whose name looks secret (``params["key"]`` such as ``openrouter_api_key``)
    records its values only as fingerprints.
    """
    params = dict(params or {})
    key = params.get("key")
    if isinstance(key, str) and _is_secret(key):
        if error is not None:  # an error text may quote the requested or the current value
            quoted = {k: v for k, v in params.items() if k in ("value", "values", "requested", "applied")}
            error = scrub(str(error), {key: [*quoted.values(), before, after, result]})
        params = {k: (_masked(v) if k in ("value", "values", "requested", "applied") else v)
                  for k, v in params.items()}
        before, after, result = _masked(before), _masked(after), _masked(result)
    record: dict[str, Any] = {"ts": _now(), "action": action, "params": jsonable(params),
                              "outcome": outcome, "caller": jsonable(dict(caller or {}))}
    if error is not None:
        record["error"] = str(error)
    if result is not None:
        record["result"] = jsonable(result)
    if before is not None:
        record["before"] = jsonable(before)
    if after is not None:
        record["after"] = jsonable(after)
    return record


def _masked(value: Any) -> Any:
    if value is None or value == "":
        return value
    return f"fingerprint {fingerprint(str(value))}"


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, allow_nan=False)
    else:
        text = str(value)
    # Spreadsheet formula injection: a cell must never start like a formula.
    return "'" + text if text.startswith(_CSV_FORMULA_START) else text


@dataclass
class Interaction:
    """Mutable record of one interaction in progress (see :meth:`AuditLog.interaction`)."""

    action: str
    params: dict[str, Any]
    caller: dict[str, Any]
    before: Any = None
    after: Any = None
    result: Any = None
    outcome: str = "ok"
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def fail(self, message: str, outcome: str = "error") -> None:
        self.outcome, self.error = outcome, message


class AuditLog:
    """Thread-safe appender of audit records to the experiment's one audit file."""

    def __init__(self, directory: str | os.PathLike[str], fmt: str = "json") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"AUDIT_LOG_FORMAT={fmt!r}: expected one of {', '.join(FORMATS)}")
        self.format = fmt
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self.records_written = 0
        self.failures = 0

    @property
    def path(self) -> Path | None:
        """The audit file (``None`` for ``AUDIT_LOG_FORMAT=none``)."""
        name = FILE_NAMES.get(self.format)
        return self.directory / name if name else None

    @property
    def enabled(self) -> bool:
        return self.format != "none"

    # -- writing -------------------------------------------------------------
    def _encode(self, record: Mapping[str, Any], header: bool) -> bytes:
        # backslashreplace: text that is not valid Unicode (a lone surrogate from a client or a
        # plugin) must never cost the record (the audit trail is written whatever the content).
        if self.format == "json":
            text = json.dumps(record, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"
            return text.encode("utf-8", "backslashreplace")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if header:
            writer.writerow(CSV_FIELDS)
        writer.writerow([_csv_cell(record.get(name)) for name in CSV_FIELDS])
        return buf.getvalue().encode("utf-8", "backslashreplace")

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one complete record (``ts`` is filled in when missing). Never raises."""
        path = self.path
        if path is None:
            return
        record = dict(record)
        record.setdefault("ts", _now())
        record = jsonable(record)
        try:
            with self._lock:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    header = self.format == "csv" and os.fstat(fd).st_size == 0
                    data = self._encode(record, header)
                    written = 0
                    while written < len(data):  # one write in practice; loop only on a short write
                        written += os.write(fd, data[written:])
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self.records_written += 1
        except Exception:
            self.failures += 1
            log.exception("cannot append to the audit log %s", path)

    def record(self, action: str | Mapping[str, Any], **fields: Any) -> None:
        """``record("pause", params=..., outcome=..., caller=...)``, or ``record(full_record_dict)``."""
        if isinstance(action, Mapping):
            self.write(action)
        else:
            self.write(make_record(action, **fields))

    log_record = record  # the CLI server's name for it

    @contextmanager
    def interaction(self, action: str, *, params: Mapping[str, Any] | None = None,
                    caller: Mapping[str, Any] | None = None) -> Iterator[Interaction]:
        """Audit the block: ``outcome`` ``ok`` unless it raises (then ``error`` + message).

        The block may set ``before``/``after``/``result`` or call ``fail(message, outcome)``.
        """
        entry = Interaction(action, dict(params or {}), dict(caller or {}))
        try:
            yield entry
        except BaseException as exc:
            if entry.outcome == "ok":
                entry.fail(_error_text(exc))
            raise
        finally:
            self.write(make_record(entry.action, params=entry.params, outcome=entry.outcome, error=entry.error,
                                   result=entry.result, caller=entry.caller, before=entry.before,
                                   after=entry.after))

    def auth_failure(self, method: str, peer: str, token_fingerprint: str | None) -> None:
        """Callback for the auth interceptor (``add_auth_failure_listener``)."""
        self.write(make_record(
            "auth_failure", params={"method": method}, outcome="denied",
            error="no token" if token_fingerprint is None else "invalid token",
            caller={"transport": "grpc", "peer": peer, "token_fingerprint": token_fingerprint}))

    # -- lifecycle (experiment.shutdown() calls stop() on every service) -------
    def stop(self) -> None:
        """Nothing is held open between records; kept for the service-handle protocol."""

    def __repr__(self) -> str:
        return f"AuditLog(format={self.format!r}, path={str(self.path) if self.path else None!r})"


def _error_text(exc: BaseException) -> str:
    text = getattr(exc, "audit_message", None) or str(exc) or type(exc).__name__
    return str(text)


def audit_format_of(experiment: Any) -> str:
    try:
        fmt = str(experiment.config["logging"].audit_log_format)
    except (KeyError, AttributeError, TypeError):
        fmt = "json"
    return fmt if fmt in FORMATS else "json"


def get_audit_log(experiment: Any) -> AuditLog:
    """The experiment's audit log, created on first use and published in
    ``experiment.services["audit"]`` so that every front end writes the same file."""
    services = experiment.services
    with _services_lock:
        existing = services.get("audit")
        if isinstance(existing, AuditLog):
            return existing
        audit = AuditLog(Path(experiment.root_log_dir), audit_format_of(experiment))
        services["audit"] = audit
        return audit


__all__ = ["CSV_FIELDS", "AuditLog", "Interaction", "get_audit_log", "jsonable", "make_record"]
