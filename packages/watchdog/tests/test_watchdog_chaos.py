"""Chaos: many concurrent unary and streaming RPCs that succeed, fail, raise, stall or get
cancelled leave no in-flight entry behind, and the monitor stays healthy throughout."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor, wait

import grpc
from watchdog_testutil import channel, method, wait_until
from weightslab.log import WATCHDOG
from weightslab_watchdog.service import WatchdogService

CALLS = 240


def _status(error: grpc.RpcError) -> str:
    return error.code().name


def _run_one(ch: grpc.Channel, kind: str, behaviour: str) -> tuple[str, list[bytes]]:
    """Returns (final status, responses received)."""
    got: list[bytes] = []
    try:
        if kind == "unary":
            got.append(method(ch, "ChaosUnary")(behaviour.encode(), timeout=10))
        elif kind == "stream":
            for response in method(ch, "ChaosStream", "unary_stream")(f"{behaviour}:3".encode(), timeout=10):
                got.append(response)
        elif kind == "bidi":
            requests = iter([behaviour.encode()] * 3)
            for response in method(ch, "ChaosBidi", "stream_stream")(requests, timeout=10):
                got.append(response)
        else:  # the client walks away mid-stream
            call = method(ch, "ChaosStream", "unary_stream")(b"stall:50", timeout=10)
            got.append(next(call))
            call.cancel()
            list(call)
    except grpc.RpcError as error:
        return _status(error), got
    return "OK", got


def _expected(kind: str, behaviour: str) -> tuple[str, list[bytes]]:
    if kind == "cancel":
        return "CANCELLED", [b"stall-0"]
    if kind == "unary":
        status = {"fail": "FAILED_PRECONDITION", "raise": "UNKNOWN"}.get(behaviour, "OK")
        return status, [f"{behaviour}-1".encode()] if status == "OK" else []
    if behaviour in ("fail", "raise"):
        return ("FAILED_PRECONDITION" if behaviour == "fail" else "UNKNOWN"), [f"{behaviour}-0".encode()]
    return "OK", [f"{behaviour}-{i}".encode() for i in range(3)]


def test_chaos_leaves_no_inflight_entry_and_monitor_healthy(grpc_env, logs) -> None:
    env = grpc_env(GRPC_WATCHDOG_STUCK_SECONDS=5, GRPC_WATCHDOG_INTERVAL_SECONDS=0.01,
                   GRPC_WATCHDOG_RESTART_THRESHOLD=1)
    service = WatchdogService(env.experiment, env.settings).start()
    rng = random.Random(20240501)
    plan = [(rng.choice(["unary", "stream", "bidi", "cancel"]), rng.choice(["ok", "fail", "raise", "stall"]))
            for _ in range(CALLS)]
    ch = channel(env.handle.port)
    peak = 0
    try:
        with ThreadPoolExecutor(16) as clients:
            futures = [clients.submit(_run_one, ch, kind, behaviour) for kind, behaviour in plan]
            while wait(futures, timeout=0.002).not_done:
                peak = max(peak, len(env.tracker))
            outcomes = [future.result() for future in futures]
        wait_until(lambda: len(env.tracker) == 0, what="every in-flight entry to go")
        result = service.poll_once().rpc
    finally:
        service.stop()
        ch.close()
    for (kind, behaviour), outcome in zip(plan, outcomes, strict=True):
        assert outcome == _expected(kind, behaviour), (kind, behaviour)
    assert peak > 1  # calls really overlapped and were tracked
    assert result.healthy and result.inflight == 0 and result.consecutive_unhealthy == 0
    assert service.polls > 1 and env.handle.restarts == 0
    assert not logs.messages(WATCHDOG)
