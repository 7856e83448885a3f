"""The watchdog service: one daemon thread running the lock and RPC monitors.

:func:`start_watchdog` (the ``weightslab_serve`` hook) starts one thread per experiment that
calls :meth:`WatchdogService.poll_once` every ``interval_seconds``; tests and tools may call
``poll_once()`` themselves, without the thread, for deterministic checks.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from weightslab.log import register_levels

from weightslab_watchdog.lock_monitor import LockCheck, LockMonitor
from weightslab_watchdog.rpc_monitor import RpcCheck, RpcMonitor
from weightslab_watchdog.settings import WatchdogSettings

if TYPE_CHECKING:  # the tracker is a grpc.ServerInterceptor: grpc loads with the first tracker only
    from weightslab_watchdog.inflight import InflightTracker

log = logging.getLogger("weightslab.watchdog")

THREAD_NAME = "weightslab-watchdog"
SERVICE_KEY = "watchdog"  # experiment.services[SERVICE_KEY]: the running WatchdogService
INFLIGHT_KEY = "watchdog_inflight"  # experiment.services[INFLIGHT_KEY]: the shared InflightTracker
_FALLBACK_ATTR = "_weightslab_watchdog"


@dataclass(frozen=True)
class PollResult:
    lock: LockCheck
    rpc: RpcCheck


def watchdog_settings(config: Any = None, experiment: Any = None) -> WatchdogSettings:
    """The ``watchdog`` section of ``config`` (else ``experiment.config``, else the defaults)."""
    for candidate in (config, getattr(experiment, "config", None)):
        if candidate is None:
            continue
        try:
            section = candidate["watchdog"]
        except (KeyError, TypeError):
            continue
        if isinstance(section, WatchdogSettings):
            return section
    return WatchdogSettings()


def _registry(experiment: Any) -> dict[str, Any]:
    """Where per-experiment watchdog objects live: ``experiment.services`` when it exists."""
    services = getattr(experiment, "services", None)
    if isinstance(services, dict):
        return services
    registry = getattr(experiment, _FALLBACK_ATTR, None)
    if registry is None:
        registry = {}
        setattr(experiment, _FALLBACK_ATTR, registry)
    return registry


def get_inflight_tracker(experiment: Any) -> InflightTracker:
    """The experiment's shared :class:`InflightTracker` (created on first use).

    The gRPC server installs it as an interceptor (``weightslab_grpc_interceptors``) and the
    RPC monitor reads it; a server restart must reuse it (the hook returns the same instance).
    """
    from weightslab_watchdog.inflight import InflightTracker

    registry = _registry(experiment)
    tracker = registry.get(INFLIGHT_KEY)
    if not isinstance(tracker, InflightTracker):
        tracker = registry.setdefault(INFLIGHT_KEY, InflightTracker())
    return tracker


class WatchdogService:
    """Lock monitor + RPC monitor of one experiment, polled by one daemon thread."""

    def __init__(self, experiment: Any, settings: WatchdogSettings,
                 tracker: InflightTracker | None = None, *,
                 exit_func: Callable[[int], Any] = os._exit) -> None:
        register_levels()
        self.experiment = experiment
        self.settings = settings
        self._tracker = tracker
        lock = getattr(experiment, "lock", None)
        self.lock_monitor = LockMonitor(lock, settings.stuck_seconds) if lock is not None else None
        self.rpc_monitor = RpcMonitor(
            tracker, experiment, stuck_seconds=settings.stuck_seconds,
            restart_threshold=settings.restart_threshold,
            details_limit=settings.inflight_details_limit, exit_on_stuck=settings.exit_on_stuck,
            exit_func=exit_func, find_tracker=self._installed_tracker)
        self.polls = 0
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def tracker(self) -> InflightTracker:
        """The tracker the RPC monitor reads: the one given, else the experiment's shared one."""
        return self._tracker if self._tracker is not None else get_inflight_tracker(self.experiment)

    def _installed_tracker(self) -> InflightTracker | None:
        # The experiment's tracker exists once a gRPC server installed it (the interceptor hook) or
        # someone asked for it: without gRPC nothing is in flight, and grpc (the tracker is a
        # grpc.ServerInterceptor) stays unloaded for a CLI-only serve.
        tracker: InflightTracker | None = _registry(self.experiment).get(INFLIGHT_KEY)
        return tracker

    def poll_once(self) -> PollResult:
        """Run both monitors once (serialised with the thread's polls)."""
        with self._poll_lock:
            lock_check = self.lock_monitor.poll_once() if self.lock_monitor else LockCheck("free")
            rpc_check = self.rpc_monitor.poll_once()
            self.polls += 1
            return PollResult(lock_check, rpc_check)

    def start(self) -> WatchdogService:
        if self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()
        log.info("watchdog started: stuck after %gs, poll every %gs, %s after %d unhealthy poll(s)",
                 self.settings.stuck_seconds, self.settings.interval_seconds,
                 "exit" if self.settings.exit_on_stuck else "gRPC restart", self.settings.restart_threshold)
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.settings.interval_seconds):
            try:
                self.poll_once()
            except Exception:
                log.exception("watchdog poll failed; continuing")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (immediately unless a poll — e.g. a server restart — is running)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("watchdog thread still busy after %.1fs; left to finish as a daemon", timeout)
        self._thread = None


def start_watchdog(experiment: Any, config: Any = None) -> WatchdogService | None:
    """Start (or return the already running) watchdog of ``experiment``; ``None`` when disabled."""
    settings = watchdog_settings(config, experiment)
    if settings.disabled:
        log.warning("watchdog disabled (WEIGHTSLAB_DISABLE_WATCHDOGS=1): a stuck lock or RPC will "
                    "not be interrupted or restarted")
        return None
    registry = _registry(experiment)
    existing = registry.get(SERVICE_KEY)
    if isinstance(existing, WatchdogService) and existing.running:
        return existing
    service = WatchdogService(experiment, settings).start()
    registry[SERVICE_KEY] = service
    return service


def stop_watchdog(experiment: Any) -> None:
    """Stop the experiment's watchdog thread, if any."""
    registry = _registry(experiment)
    service = registry.pop(SERVICE_KEY, None)
    if isinstance(service, WatchdogService):
        service.stop()
