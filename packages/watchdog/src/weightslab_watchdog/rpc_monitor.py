"""Stuck-RPC policy: restart the gRPC server (or exit) after N consecutive unhealthy polls.

A poll is *unhealthy* when an in-flight RPC has been doing server work for more than
``stuck_seconds`` without a break (:meth:`InflightCall.busy_for`): a stream waiting on a slow or
idle client (a health ``Watch``, a slow reader of ``StreamSample``) is never stuck.
After ``restart_threshold`` consecutive unhealthy polls the monitor calls
``experiment.services["grpc"].restart()`` — the same server object restarts on the same
address with the same servicer, so the experiment's state is untouched — and drops the
in-flight entries of the old server. With ``exit_on_stuck`` it instead flushes
``experiment.store`` (best effort, bounded in time) and calls ``os._exit(1)`` so that a
supervisor (systemd, Kubernetes, a job scheduler) restarts the process. A healthy poll
resets the counter.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from weightslab.log import WATCHDOG, register_levels

if TYPE_CHECKING:  # annotations only: importing the monitor must not load grpc
    from weightslab_watchdog.inflight import InflightCall, InflightTracker

log = logging.getLogger("weightslab.watchdog.rpc")

RpcAction = Literal["none", "restarted", "restart_failed", "restart_unavailable", "exit"]
FLUSH_TIMEOUT_FLOOR_SECONDS = 5.0


@dataclass(frozen=True)
class RpcCheck:
    """Outcome of one RPC poll. ``consecutive_unhealthy`` is the counter after this poll
    (back to 0 after a restart attempt)."""

    healthy: bool
    inflight: int
    stuck: tuple[InflightCall, ...] = ()
    consecutive_unhealthy: int = 0
    action: RpcAction = "none"


def details(calls: list[InflightCall], limit: int, now: float | None = None) -> str:
    """At most ``limit`` lines ``  - <call>``, then ``  (+N more)`` when some were left out."""
    now = time.monotonic() if now is None else now
    lines = [f"  - {call.describe(now)}" for call in calls[:limit]]
    if len(calls) > limit:
        lines.append(f"  (+{len(calls) - limit} more)")
    return "\n".join(lines)


def _flush_logs() -> None:
    loggers = [logging.getLogger(), logging.getLogger("weightslab"), log]
    for logger in loggers:
        for handler in logger.handlers:
            try:
                handler.flush()
            except Exception:  # best effort right before os._exit
                pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


class RpcMonitor:
    """Detect stuck in-flight RPCs and apply the restart / exit policy."""

    def __init__(self, tracker: InflightTracker | None, experiment: Any, *, stuck_seconds: float,
                 restart_threshold: int, details_limit: int, exit_on_stuck: bool,
                 exit_func: Callable[[int], Any] = os._exit,
                 find_tracker: Callable[[], InflightTracker | None] | None = None) -> None:
        """``tracker=None``: ``find_tracker()`` gives it at each poll, ``None`` while no gRPC server
        installed one (nothing can be in flight then)."""
        register_levels()
        self._tracker = tracker
        self._find_tracker = find_tracker
        self.experiment = experiment
        self.stuck_seconds = stuck_seconds
        self.restart_threshold = restart_threshold
        self.details_limit = details_limit
        self.exit_on_stuck = exit_on_stuck
        self.restarts = 0
        self._exit = exit_func
        self._unhealthy = 0

    @property
    def tracker(self) -> InflightTracker | None:
        if self._tracker is not None or self._find_tracker is None:
            return self._tracker
        return self._find_tracker()

    @property
    def consecutive_unhealthy(self) -> int:
        return self._unhealthy

    def poll_once(self) -> RpcCheck:
        now = time.monotonic()
        tracker = self.tracker
        calls = tracker.snapshot() if tracker is not None else []
        stuck = tuple(sorted((call for call in calls if call.busy_for(now) > self.stuck_seconds),
                             key=lambda call: -call.busy_for(now)))
        if not stuck:
            if self._unhealthy:
                log.info("in-flight RPCs healthy again after %d unhealthy poll(s)", self._unhealthy)
            self._unhealthy = 0
            return RpcCheck(True, len(calls))
        self._unhealthy += 1
        log.log(WATCHDOG, "unhealthy poll %d/%d: %d in-flight RPC(s) running longer than %gs "
                "(longest %s busy for %.1fs), %d in flight:\n%s", self._unhealthy, self.restart_threshold,
                len(stuck), self.stuck_seconds, stuck[0].method, stuck[0].busy_for(now), len(calls),
                details(calls, self.details_limit, now))
        if self._unhealthy < self.restart_threshold:
            return RpcCheck(False, len(calls), stuck, self._unhealthy)
        count = self._unhealthy
        self._unhealthy = 0
        if self.exit_on_stuck:
            self._exit_process(count)
            return RpcCheck(False, len(calls), stuck, 0, "exit")  # only when exit_func returns (tests)
        return RpcCheck(False, len(calls), stuck, 0, self._restart(count))

    def _restart(self, count: int) -> RpcAction:
        services = getattr(self.experiment, "services", None) or {}
        server = services.get("grpc")
        if server is None or not callable(getattr(server, "restart", None)):
            log.error("%d consecutive unhealthy polls but experiment.services has no 'grpc' handle "
                      "with restart(); nothing restarted", count)
            return "restart_unavailable"
        log.log(WATCHDOG, "%d consecutive unhealthy polls: restarting the gRPC server", count)
        started = time.monotonic()
        try:
            server.restart()
        except Exception:
            log.exception("gRPC server restart failed; will retry after %d more unhealthy polls",
                          self.restart_threshold)
            return "restart_failed"
        tracker = self.tracker
        dropped = tracker.reset(started_before=started) if tracker is not None else 0
        self.restarts += 1
        log.log(WATCHDOG, "recovered: gRPC server restarted on the same address in %.2fs with the "
                "experiment state kept; %d stale in-flight entr%s dropped", time.monotonic() - started,
                dropped, "y" if dropped == 1 else "ies")
        return "restarted"

    def _exit_process(self, count: int) -> None:
        log.log(WATCHDOG, "%d consecutive unhealthy polls and GRPC_WATCHDOG_EXIT_ON_STUCK=1: flushing "
                "the store and exiting with status 1", count)
        self._flush_store()
        _flush_logs()
        self._exit(1)

    def _flush_store(self) -> None:
        store = getattr(self.experiment, "store", None)
        flush = getattr(store, "flush", None)
        if flush is None:
            return
        failure: list[BaseException] = []

        def run() -> None:
            try:
                flush()
            except BaseException as exc:  # reported below
                failure.append(exc)

        timeout = max(FLUSH_TIMEOUT_FLOOR_SECONDS, self.stuck_seconds)
        worker = threading.Thread(target=run, name="weightslab-watchdog-flush", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            log.error("store flush did not finish within %.0fs; exiting anyway", timeout)
        elif failure:
            exc = failure[0]
            log.error("store flush before exit failed: %s: %s", type(exc).__name__, exc,
                      exc_info=(type(exc), exc, exc.__traceback__))
