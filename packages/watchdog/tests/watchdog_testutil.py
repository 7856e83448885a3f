"""Shared helpers of the watchdog tests (also imported by the exit-on-stuck subprocess).

A real gRPC server on 127.0.0.1 with a generic (bytes in, bytes out) handler, a server
handle honouring the restart contract of ``experiment.services["grpc"]``, a stand-in
experiment and a poll-with-deadline helper.
"""

from __future__ import annotations

import logging
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from weightslab.config import Config, resolve
from weightslab.lock import WeightsLabRLock
from weightslab_watchdog.settings import WatchdogSettings

SERVICE = "wdtest.Test"
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.002)


def watchdog_config(**env: object) -> Config:
    """Resolve the watchdog section from variables (never from os.environ or a .env file)."""
    return resolve([WatchdogSettings], environ={key: str(value) for key, value in env.items()},
                   env_file=None)


def watchdog_settings(**env: object) -> WatchdogSettings:
    section = watchdog_config(**env)["watchdog"]
    assert isinstance(section, WatchdogSettings)
    return section


class MarkerStore:
    """Stand-in for ``experiment.store``: ``flush()`` writes a marker file (or fails)."""

    def __init__(self, marker: Path | None = None, fail: bool = False) -> None:
        self.marker = marker
        self.fail = fail
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        if self.fail:
            raise OSError("disk on fire")
        if self.marker is not None:
            self.marker.write_text("flushed")


def make_experiment(config: Config | None = None, store: Any = None) -> types.SimpleNamespace:
    return types.SimpleNamespace(lock=WeightsLabRLock(), config=config or watchdog_config(),
                                 services={}, store=store or MarkerStore())


class Servicer:
    """Handlers over state that must survive a server restart (``counter``)."""

    def __init__(self, lock: WeightsLabRLock | None = None) -> None:
        self.lock = lock
        self.counter = 0
        self._counter_lock = threading.Lock()
        self.release = threading.Event()  # unblocks Block / Gate handlers
        self.abort_spin = threading.Event()  # safety stop of the lock-spinning handler
        self._cond = threading.Condition()
        self.blocked = 0  # Block handlers entered so far
        self.lock_entered = threading.Event()
        self.lock_finally_ran = threading.Event()

    # -- handlers ----------------------------------------------------------------------
    def count(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._counter_lock:
            self.counter += 1
            return str(self.counter).encode()

    def block(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._cond:
            self.blocked += 1
            self._cond.notify_all()
        self.release.wait(30)
        return b"released"

    def hold_lock(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        assert self.lock is not None
        try:
            with self.lock:
                self.lock_entered.set()
                spins = 0
                while not self.abort_spin.is_set():  # pure Python: interruptible
                    spins += 1
            return b"finished"
        finally:
            self.lock_finally_ran.set()

    def gated_stream(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield b"first"
        self.release.wait(30)
        yield b"second"

    def chaos_unary(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        return _chaos_step(request, context, 1)

    def chaos_stream(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        count = request.decode().partition(":")[2]
        for index in range(int(count or 3)):
            yield _chaos_step(request, context, index)

    def chaos_bidi(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        for index, request in enumerate(requests):
            yield _chaos_step(request, context, index)

    def wait_blocked(self, count: int, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.blocked >= count, timeout):
                raise AssertionError(f"only {self.blocked}/{count} Block handlers entered")

    def generic_handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Count": grpc.unary_unary_rpc_method_handler(self.count),
            "Block": grpc.unary_unary_rpc_method_handler(self.block),
            "HoldLock": grpc.unary_unary_rpc_method_handler(self.hold_lock),
            "GatedStream": grpc.unary_stream_rpc_method_handler(self.gated_stream),
            "ChaosUnary": grpc.unary_unary_rpc_method_handler(self.chaos_unary),
            "ChaosStream": grpc.unary_stream_rpc_method_handler(self.chaos_stream),
            "ChaosBidi": grpc.stream_stream_rpc_method_handler(self.chaos_bidi),
        })


def _chaos_step(request: bytes, context: grpc.ServicerContext, index: int) -> bytes:
    """``ok`` answers; ``fail`` aborts FAILED_PRECONDITION at step 1; ``raise`` raises at step 1;
    ``stall`` pauses briefly at every step (a handler stalling, not test synchronisation)."""
    behaviour = request.decode().partition(":")[0]
    if behaviour == "fail" and index >= 1:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "chaos says no")
    if behaviour == "raise" and index >= 1:
        raise RuntimeError("chaos bug")
    if behaviour == "stall":
        threading.Event().wait(0.01)
    return f"{behaviour}-{index}".encode()


class ServerHandle:
    """What ``experiment.services["grpc"]`` must provide to the watchdog.

    ``restart()`` stops the server and starts a new one on the same address with the same
    servicer (same state) and interceptors, on a fresh worker pool (the old one may hold
    stuck threads), and returns once it is serving.
    """

    def __init__(self, servicer: Servicer, interceptors: list[grpc.ServerInterceptor],
                 max_workers: int = 32) -> None:
        self.servicer = servicer
        self.interceptors = interceptors
        self.max_workers = max_workers
        self.port = 0
        self.restarts = 0
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self._pools: list[ThreadPoolExecutor] = []
        self._start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self) -> None:
        pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="wdtest-grpc")
        server = grpc.server(pool, handlers=[self.servicer.generic_handler()],
                             interceptors=self.interceptors, options=[("grpc.so_reuseport", 0)])
        deadline = time.monotonic() + 5
        while True:
            try:
                bound = server.add_insecure_port(f"127.0.0.1:{self.port}")
            except RuntimeError:
                bound = 0
            if bound:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not bind 127.0.0.1:{self.port} again")
            time.sleep(0.01)
        server.start()
        self.port = bound
        self._server = server
        self._pools.append(pool)

    def _stop_server(self) -> None:
        if self._server is not None:
            self._server.stop(grace=0.2).wait(5)
            self._server = None
            self._pools[-1].shutdown(wait=False)

    def restart(self) -> None:
        with self._lock:
            self._stop_server()
            self._start()
            self.restarts += 1

    def stop(self) -> None:
        with self._lock:
            self._stop_server()


def channel(port: int) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)


def method(ch: grpc.Channel, name: str, kind: str = "unary_unary") -> Any:
    return getattr(ch, kind)(f"/{SERVICE}/{name}")


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.records.append(record)

    def messages(self, level: int | None = None, contains: str = "") -> list[str]:
        with self._lock_records:
            records = list(self.records)
        return [r.getMessage() for r in records
                if (level is None or r.levelno == level) and contains in r.getMessage()]


def env_of(settings: Mapping[str, object]) -> dict[str, str]:
    return {key: str(value) for key, value in settings.items()}
