"""Rate-limited, aggregated records of failed authentication (gRPC and the CLI server).

A client that retries a wrong token hundreds of times a second must not turn the audit log
(one fsync per record) and the log into its amplifier. Per peer *host* and interval:

* the first failure is reported at once (a single mistake is visible immediately);
* later failures in the same interval are only counted;
* when the interval ends, one summary reports how many there were (``failures``), by method
  and reason.

So each host produces at most two reports per interval, whatever it sends. Rejected tokens are
never hashed or fingerprinted here: a reason says only ``no token`` or ``invalid token``.
Lives in the core (no grpc import): the gRPC token interceptor and the CLI server share it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("weightslab.security")

DEFAULT_INTERVAL_SECONDS = 60.0
MAX_TRACKED_HOSTS = 1024
OTHER_HOSTS = "(other hosts)"


@dataclass(frozen=True)
class FailureReport:
    """What one audit record says: ``failures`` attempts from ``host`` in ``interval_seconds``."""

    transport: str
    host: str
    peer: str  # the last peer address (with port) seen from that host
    method: str  # the method of the first failure (immediate) or the most frequent one (summary)
    reason: str
    failures: int
    interval_seconds: float
    summary: bool  # False: the immediate report of the first failure of an interval
    methods: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)


Emit = Callable[[FailureReport], None]


def peer_host(peer: str) -> str:
    """The host part of a peer address: ``ipv4:1.2.3.4:5`` -> ``ipv4:1.2.3.4``, ``[::1]:5`` -> ``[::1]``."""
    if peer.startswith("unix:"):
        return "unix"
    head, sep, tail = peer.rpartition(":")
    if sep and tail.isdigit() and head and head not in ("ipv4", "ipv6"):
        return head
    return peer


@dataclass
class _Window:
    start: float
    peer: str
    methods: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def suppressed(self) -> int:
        return sum(self.methods.values())


class AuthFailureAggregator:
    """Reports failed authentications through ``emit``: at most two reports per host and interval."""

    def __init__(self, emit: Emit, *, transport: str, interval: float = DEFAULT_INTERVAL_SECONDS,
                 max_hosts: int = MAX_TRACKED_HOSTS, clock: Callable[[], float] = time.monotonic) -> None:
        if interval <= 0:
            raise ValueError(f"interval={interval!r}: expected a positive number of seconds")
        self._emit = emit
        self.transport = transport
        self.interval = float(interval)
        self._max_hosts = max_hosts
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.reports = 0

    def failure(self, method: str, peer: str, reason: str) -> None:
        """One failed authentication of ``method`` from ``peer`` (``reason``: ``no token``, ...)."""
        now = self._clock()
        host = peer_host(peer)
        due: list[FailureReport] = []
        with self._cond:
            window = self._windows.get(host)
            if window is not None and now - window.start >= self.interval:
                due.extend(self._close(host))
                window = None
            if window is None:
                if len(self._windows) >= self._max_hosts and host not in self._windows:
                    host = OTHER_HOSTS  # bounded memory under a spray from many addresses
                    window = self._windows.get(host)
                if window is None:
                    self._windows[host] = _Window(now, peer)
                    due.append(FailureReport(self.transport, host, peer, method, reason, 1,
                                             self.interval, False, {method: 1}, {reason: 1}))
            if window is not None:
                window.peer = peer
                window.methods[method] += 1
                window.reasons[reason] += 1
                self._ensure_flusher()
        for report in due:
            self._send(report)

    def flush(self) -> None:
        """Report every counted failure now (and forget the windows)."""
        with self._cond:
            due = [report for host in list(self._windows) for report in self._close(host)]
        for report in due:
            self._send(report)

    def stop(self) -> None:
        """End the background thread and report what is still counted (idempotent; a later
        failure starts a new thread, so a restarted server keeps reporting)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.flush()
        with self._cond:
            self._stopped = False

    # -- internals -----------------------------------------------------------------------
    def _close(self, host: str) -> list[FailureReport]:
        window = self._windows.pop(host)
        if not window.suppressed:
            return []
        method = window.methods.most_common(1)[0][0]
        reason = window.reasons.most_common(1)[0][0]
        return [FailureReport(self.transport, host, window.peer, method, reason, window.suppressed,
                              self.interval, True, dict(window.methods), dict(window.reasons))]

    def _ensure_flusher(self) -> None:
        if self._stopped or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._run, name="weightslab-auth-failures", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped or not self._windows:
                    self._thread = None
                    return
                now = self._clock()
                first_end = min(w.start for w in self._windows.values()) + self.interval
                if now < first_end:
                    self._cond.wait(first_end - now)
                    continue
                due = [report for host, w in list(self._windows.items())
                       if now - w.start >= self.interval for report in self._close(host)]
            for report in due:
                self._send(report)

    def _send(self, report: FailureReport) -> None:
        self.reports += 1
        if report.summary:
            log.warning("%s: %d more failed authentication(s) from %s in the last %gs (%s)", report.transport,
                        report.failures, report.host, report.interval_seconds,
                        ", ".join(f"{r}: {n}" for r, n in sorted(report.reasons.items())))
        else:
            log.warning("%s: failed authentication of %s from %s: %s (further failures from this host are "
                        "counted and reported once per %gs)", report.transport, report.method[:64], report.peer,
                        report.reason, report.interval_seconds)
        try:
            self._emit(report)
        except Exception:  # an audit failure must not turn a rejection into a crash
            log.exception("reporting a failed authentication failed")


def audit_fields(report: FailureReport) -> dict[str, object]:
    """Keyword arguments of ``AuditLog.record("auth_failure", ...)`` for one report."""
    params: dict[str, object] = {"method": report.method[:64], "failures": report.failures}
    if report.summary:
        params["interval_seconds"] = report.interval_seconds
        # Lists of pairs, not mappings: a method or reason is data, never a field name (a name
        # such as "invalid token" would be taken for a secret by the audit's masking rule).
        params["methods"] = [{"method": m[:64], "count": n} for m, n in list(report.methods.items())[:20]]
        params["reasons"] = [{"reason": r, "count": n} for r, n in report.reasons.items()]
    return {"params": params, "outcome": "denied", "error": report.reason,
            "caller": {"transport": report.transport, "peer": report.peer, "token_fingerprint": None}}
