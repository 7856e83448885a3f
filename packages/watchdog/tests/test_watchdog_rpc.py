"""RPC monitor against a real gRPC server: stuck calls, restart policy, state kept."""

from __future__ import annotations

import grpc
import pytest
from watchdog_testutil import channel, method, wait_until
from weightslab.log import WATCHDOG
from weightslab_watchdog.inflight import INTERRUPTED_DETAILS
from weightslab_watchdog.service import WatchdogService

STUCK = 0.05


def _oldest_older_than(tracker, seconds: float) -> bool:
    """Some call has been doing server work for longer than ``seconds`` (what the monitor calls stuck)."""
    return any(call.busy_for() > seconds for call in tracker.snapshot())


@pytest.mark.parametrize("threshold", [1, 3])
def test_blocked_rpc_restarts_server_after_exactly_n_unhealthy_polls(grpc_env, logs, threshold) -> None:
    env = grpc_env(GRPC_WATCHDOG_STUCK_SECONDS=STUCK, GRPC_WATCHDOG_RESTART_THRESHOLD=threshold)
    service = WatchdogService(env.experiment, env.settings)
    assert service.tracker is env.tracker
    first = channel(env.handle.port)
    assert method(first, "Count")(b"", timeout=5) == b"1"
    blocked = method(first, "Block").future(b"", timeout=20)
    env.servicer.wait_blocked(1)
    wait_until(lambda: _oldest_older_than(env.tracker, STUCK), what="a stuck RPC")

    for poll in range(1, threshold):
        result = service.poll_once()
        assert not result.rpc.healthy and result.rpc.action == "none"
        assert result.rpc.consecutive_unhealthy == poll
        assert [call.method for call in result.rpc.stuck] == ["/wdtest.Test/Block"]
        assert env.handle.restarts == 0
    result = service.poll_once()
    assert result.rpc.action == "restarted" and result.rpc.consecutive_unhealthy == 0
    assert env.handle.restarts == 1
    assert len(env.tracker) == 0  # the old server's entries are gone

    with pytest.raises(grpc.RpcError):
        blocked.result(timeout=10)  # the stuck call ended with the old server
    fresh = channel(env.handle.port)
    assert method(fresh, "Count")(b"", timeout=5) == b"2"  # same servicer state
    assert service.poll_once().rpc.healthy
    assert len([m for m in logs.messages(WATCHDOG) if m.startswith("unhealthy poll ")]) == threshold
    assert logs.messages(WATCHDOG, "recovered: gRPC server restarted")
    first.close()
    fresh.close()


def test_healthy_poll_resets_the_counter(grpc_env, logs) -> None:
    env = grpc_env(GRPC_WATCHDOG_STUCK_SECONDS=STUCK, GRPC_WATCHDOG_RESTART_THRESHOLD=3)
    service = WatchdogService(env.experiment, env.settings)
    ch = channel(env.handle.port)
    call = method(ch, "GatedStream", "unary_stream")(b"", timeout=20)
    assert next(call) == b"first"
    wait_until(lambda: _oldest_older_than(env.tracker, STUCK), what="a stuck stream")
    assert service.poll_once().rpc.consecutive_unhealthy == 1
    assert service.poll_once().rpc.consecutive_unhealthy == 2
    env.servicer.release.set()  # the stream finishes: healthy again
    assert list(call) == [b"second"]
    wait_until(lambda: len(env.tracker) == 0, what="the stream entry to go")
    healthy = service.poll_once().rpc
    assert healthy.healthy and healthy.consecutive_unhealthy == 0
    assert logs.messages(contains="healthy again after 2 unhealthy poll(s)")
    env.servicer.release.clear()

    blocked = method(ch, "Block").future(b"", timeout=20)
    env.servicer.wait_blocked(1)
    wait_until(lambda: _oldest_older_than(env.tracker, STUCK), what="a stuck RPC")
    assert [service.poll_once().rpc.action for _ in range(2)] == ["none", "none"]
    assert env.handle.restarts == 0  # 2 + 2 unhealthy polls, never 3 in a row
    assert service.poll_once().rpc.action == "restarted"
    with pytest.raises(grpc.RpcError):
        blocked.result(timeout=10)
    ch.close()


def test_rpc_younger_than_stuck_seconds_is_healthy(grpc_env) -> None:
    env = grpc_env(GRPC_WATCHDOG_STUCK_SECONDS=30, GRPC_WATCHDOG_RESTART_THRESHOLD=1)
    service = WatchdogService(env.experiment, env.settings)
    ch = channel(env.handle.port)
    blocked = method(ch, "Block").future(b"", timeout=20)
    env.servicer.wait_blocked(1)
    for _ in range(3):
        result = service.poll_once().rpc
        assert result.healthy and result.inflight == 1 and result.action == "none"
    env.servicer.release.set()
    assert blocked.result(timeout=10) == b"released"
    wait_until(lambda: len(env.tracker) == 0, what="the entry to go")
    assert env.handle.restarts == 0
    ch.close()


@pytest.mark.parametrize("limit", [0, 2, 10])
def test_log_lists_at_most_details_limit_entries(grpc_env, logs, limit) -> None:
    env = grpc_env(GRPC_WATCHDOG_STUCK_SECONDS=STUCK, GRPC_WATCHDOG_RESTART_THRESHOLD=5,
                   GRPC_WATCHDOG_INFLIGHT_DETAILS_LIMIT=limit)
    service = WatchdogService(env.experiment, env.settings)
    ch = channel(env.handle.port)
    calls = [method(ch, "Block").future(b"", timeout=20) for _ in range(5)]
    env.servicer.wait_blocked(5)
    wait_until(lambda: len(env.tracker) == 5, what="5 tracked calls")
    wait_until(lambda: _oldest_older_than(env.tracker, STUCK), what="stuck RPCs")
    assert not service.poll_once().rpc.healthy
    [message] = logs.messages(WATCHDOG, "unhealthy poll 1/5")
    entries = [line for line in message.splitlines() if line.startswith("  - ")]
    assert len(entries) == min(limit, 5)
    assert all("/wdtest.Test/Block (unary_unary) from ipv4:127.0.0.1:" in line for line in entries)
    if limit < 5:
        assert f"(+{5 - limit} more)" in message
    else:
        assert "more)" not in message
    env.servicer.release.set()
    assert [call.result(timeout=10) for call in calls] == [b"released"] * 5
    ch.close()


def test_lock_held_by_an_rpc_handler_is_interrupted_and_the_client_gets_aborted(grpc_env) -> None:
    env = grpc_env(GRPC_WATCHDOG_STUCK_SECONDS=STUCK, GRPC_WATCHDOG_RESTART_THRESHOLD=100)
    service = WatchdogService(env.experiment, env.settings)
    ch = channel(env.handle.port)
    call = method(ch, "HoldLock").future(b"", timeout=20)
    assert env.servicer.lock_entered.wait(10)
    lock = env.experiment.lock
    wait_until(lambda: (h := lock.holder()) is not None and h.held_seconds > STUCK, what="a stuck lock")
    result = service.poll_once()
    assert result.lock.state == "stuck" and result.lock.interrupted
    with pytest.raises(grpc.RpcError) as failure:
        call.result(timeout=10)
    assert failure.value.code() == grpc.StatusCode.ABORTED
    assert failure.value.details() == INTERRUPTED_DETAILS
    assert env.servicer.lock_finally_ran.is_set()
    assert lock.holder() is None
    wait_until(lambda: len(env.tracker) == 0, what="the entry to go")
    assert method(ch, "Count")(b"", timeout=5) == b"1"  # the server kept working: no restart
    assert env.handle.restarts == 0
    ch.close()


def test_streaming_entries_end_on_exhaustion_and_on_client_cancel(grpc_env) -> None:
    env = grpc_env(GRPC_WATCHDOG_STUCK_SECONDS=30)
    ch = channel(env.handle.port)
    call = method(ch, "GatedStream", "unary_stream")(b"", timeout=20)
    assert next(call) == b"first"
    [entry] = env.tracker.snapshot()
    assert entry.method == "/wdtest.Test/GatedStream" and entry.kind == "unary_stream"
    assert entry.peer.startswith("ipv4:127.0.0.1:")
    call.cancel()  # handler thread is parked in release.wait(): entry stays until it returns
    env.servicer.release.set()
    wait_until(lambda: len(env.tracker) == 0, what="the cancelled stream's entry to go")
    done = method(ch, "GatedStream", "unary_stream")(b"", timeout=20)
    assert list(done) == [b"first", b"second"]
    wait_until(lambda: len(env.tracker) == 0, what="the exhausted stream's entry to go")
    ch.close()


def test_running_thread_restarts_the_server_end_to_end(grpc_env, logs) -> None:
    env = grpc_env(GRPC_WATCHDOG_STUCK_SECONDS=STUCK, GRPC_WATCHDOG_INTERVAL_SECONDS=0.02,
                   GRPC_WATCHDOG_RESTART_THRESHOLD=2)
    service = WatchdogService(env.experiment, env.settings).start()
    try:
        ch = channel(env.handle.port)
        assert method(ch, "Count")(b"", timeout=5) == b"1"
        blocked = method(ch, "Block").future(b"", timeout=20)
        wait_until(lambda: env.handle.restarts == 1, what="the watchdog thread's restart")
        with pytest.raises(grpc.RpcError):
            blocked.result(timeout=10)
        fresh = channel(env.handle.port)
        assert method(fresh, "Count")(b"", timeout=5) == b"2"
        fresh.close()
        ch.close()
    finally:
        service.stop()
    assert not service.running
    assert len([m for m in logs.messages(WATCHDOG) if m.startswith("unhealthy poll ")]) >= 2
