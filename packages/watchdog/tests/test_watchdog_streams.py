"""Long-lived streams against the watchdog: waiting on a client is never "stuck".

The trigger (issue 12, item 1): health ``Watch`` streams held open restarted the real gRPC server
(the wrappers lost the flag that lets ``Watch`` run without a worker thread, and a stream waiting
on its client counted as stuck), and 16 of them starved authenticated calls. Real server package,
real TLS + mTLS + token, real core Experiment, loopback only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from watchdog_testutil import CHANNEL_OPTIONS, wait_until
from weightslab.experiment import Experiment
from weightslab.plugins import create_plugin_manager
from weightslab_watchdog.inflight import InflightTracker
from weightslab_watchdog.rpc_monitor import RpcMonitor

pki = pytest.importorskip("weightslab_auth.pki")
pb = pytest.importorskip("weightslab_grpc_server._generated.experiment_pb2")
pb_grpc = pytest.importorskip("weightslab_grpc_server._generated.experiment_pb2_grpc")
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from weightslab_auth.client import secure_channel  # noqa: E402

STUCK = 0.2
WATCH = "/grpc.health.v1.Health/Watch"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    paths = pki.ensure_dev_pki(tmp_path / "certs")
    token = pki.load_token(tmp_path / "certs")
    environ = {
        "GRPC_TLS_CERT_DIR": str(paths.directory), "GRPC_AUTH_TOKEN": token,
        "GRPC_WATCHDOG_STUCK_SECONDS": str(STUCK), "GRPC_WATCHDOG_INTERVAL_SECONDS": "3600",  # polled by hand
        "GRPC_WATCHDOG_RESTART_THRESHOLD": "1", "GRPC_MAX_CONCURRENT_RPCS": "16",
        "WEIGHTSLAB_DISABLED_PLUGINS": "cli,data_cache,agent,studio", "WEIGHTSLAB_LOG_LEVEL": "WARNING",
    }
    pm = create_plugin_manager(environ)
    exp = Experiment(kwargs={"root_log_dir": tmp_path / "run", "grpc_host": "127.0.0.1", "grpc_port": 0},
                     environ=environ, pm=pm)
    exp.start()
    exp.register_samples("train", ["a", "b", "c"], np.array([0, 1, 2]))
    exp.serve_options["grpc"] = True
    pm.hook.weightslab_configure(config=exp.config)
    pm.hook.weightslab_serve(experiment=exp, config=exp.config)
    channels: list[grpc.Channel] = []

    def channel(with_token: bool = True) -> grpc.Channel:
        ch = secure_channel(f"127.0.0.1:{exp.services['grpc'].port}", ca=paths.ca_cert,
                            cert=paths.envoy_client_cert, key=paths.envoy_client_key,
                            token=token if with_token else None, options=CHANNEL_OPTIONS)
        channels.append(ch)
        return ch

    try:
        yield {"exp": exp, "channel": channel, "token": token}
    finally:
        for ch in channels:
            ch.close()
        exp.shutdown()


def _tracked(exp: Experiment, method: str) -> list[Any]:
    return [call for call in exp.services["watchdog"].tracker.snapshot() if call.method == method]


def test_health_watch_streams_hold_no_worker_and_are_never_stuck(served: dict[str, Any]) -> None:
    exp, channel = served["exp"], served["channel"]
    server, watchdog = exp.services["grpc"], exp.services["watchdog"]
    # Without the token Watch is refused (only Check is public).
    anonymous = health_pb2_grpc.HealthStub(channel(with_token=False))
    assert anonymous.Check(health_pb2.HealthCheckRequest(), timeout=10).status == \
        health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as err:
        next(iter(anonymous.Watch(health_pb2.HealthCheckRequest(), timeout=10)))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

    health = health_pb2_grpc.HealthStub(channel())
    watches = [health.Watch(health_pb2.HealthCheckRequest(), timeout=30) for _ in range(3)]
    try:
        for watch in watches:
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        # The non-blocking handler returned: no worker thread is held, nothing is in flight.
        wait_until(lambda: not _tracked(exp, WATCH), what="Watch handlers to return")
        # Well past the stuck threshold, every poll is healthy and nothing restarts.
        threading.Event().wait(STUCK * 2)
        assert watchdog.poll_once().rpc.healthy
        assert server.restarts == 0
        stub = pb_grpc.ExperimentServiceStub(channel())
        assert stub.GetStatus(pb.GetStatusRequest(), timeout=10).samples == 3
        # The streams still deliver: a status change reaches every watcher.
        server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        for watch in watches:
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        for watch in watches:
            watch.cancel()


def test_streams_per_peer_are_capped_and_unary_calls_keep_working(served: dict[str, Any]) -> None:
    """16 Watch streams used to take every RPC slot (GetStatus: RESOURCE_EXHAUSTED)."""
    exp, channel = served["exp"], served["channel"]
    limit = exp.services["grpc"].stream_limit
    assert limit is not None and limit.per_peer == 8  # half of GRPC_MAX_CONCURRENT_RPCS=16
    health = health_pb2_grpc.HealthStub(channel())
    watches = [health.Watch(health_pb2.HealthCheckRequest(), timeout=30) for _ in range(16)]
    try:
        admitted, refused = 0, []
        for watch in watches:
            try:
                next(watch)
                admitted += 1
            except grpc.RpcError as exc:
                refused.append(exc)
        assert admitted == 8 and len(refused) == 8
        assert all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused)
        assert "at most 8 per peer" in (refused[0].details() or "")
        stub = pb_grpc.ExperimentServiceStub(channel())
        with ThreadPoolExecutor(4) as pool:  # several authenticated calls at once still get through
            replies = list(pool.map(lambda _: stub.GetStatus(pb.GetStatusRequest(), timeout=10), range(4)))
        assert [r.samples for r in replies] == [3] * 4
    finally:
        for watch in watches:
            watch.cancel()
    # Cancelled streams give their slots back.
    wait_until(lambda: limit.open_streams() == 0, what="stream slots to be released")


# -- a slow reader of a server stream (generic handler; the tracker is the watchdog's own) -------

CHUNK = b"x" * (256 * 1024)


def _big_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    for _ in range(64):  # 16 MiB: far more than the HTTP/2 flow-control window
        yield CHUNK


def test_a_slow_reader_is_waiting_not_stuck() -> None:
    tracker = InflightTracker()
    handler = grpc.method_handlers_generic_handler("wdtest.Slow", {
        "Big": grpc.unary_stream_rpc_method_handler(_big_stream)})
    # No BDP probing: the flow-control window stays small, so the server really waits on the reader.
    no_bdp = [("grpc.http2.bdp_probe", 0)]
    server = grpc.server(ThreadPoolExecutor(4), handlers=[handler], interceptors=[tracker],
                         options=[("grpc.so_reuseport", 0), *no_bdp])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    exp = type("Exp", (), {"services": {}})()
    monitor = RpcMonitor(tracker, exp, stuck_seconds=STUCK, restart_threshold=1, details_limit=5,
                         exit_on_stuck=True, exit_func=lambda code: pytest.fail("exit on a slow reader"))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=[*CHANNEL_OPTIONS, *no_bdp]) as ch:
            call = ch.unary_stream("/wdtest.Slow/Big")(b"", timeout=30)
            assert next(call) == CHUNK  # then the client stops reading
            wait_until(lambda: tracker.snapshot() and tracker.snapshot()[0].busy_since is None,
                       what="the stream to wait on its reader")
            threading.Event().wait(STUCK * 2)
            [entry] = tracker.snapshot()
            assert entry.age() > STUCK and entry.busy_for() == 0.0
            assert monitor.poll_once().healthy
            assert sum(len(chunk) for chunk in call) == len(CHUNK) * 63  # the reader catches up
        wait_until(lambda: len(tracker) == 0, what="the finished stream to leave the table")
    finally:
        server.stop(None)


def test_stream_busy_in_the_server_is_still_stuck() -> None:
    """The other side: a handler stuck producing its next response is flagged as before."""
    tracker = InflightTracker()
    release = threading.Event()

    def hung(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield b"first"
        release.wait(30)
        yield b"second"

    handler = grpc.method_handlers_generic_handler("wdtest.Hung", {
        "Stream": grpc.unary_stream_rpc_method_handler(hung)})
    server = grpc.server(ThreadPoolExecutor(4), handlers=[handler], interceptors=[tracker],
                         options=[("grpc.so_reuseport", 0)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    exp = type("Exp", (), {"services": {}})()
    monitor = RpcMonitor(tracker, exp, stuck_seconds=STUCK, restart_threshold=5, details_limit=5,
                         exit_on_stuck=False)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as ch:
            call = ch.unary_stream("/wdtest.Hung/Stream")(b"", timeout=30)
            assert next(call) == b"first"
            wait_until(lambda: any(c.busy_for() > STUCK for c in tracker.snapshot()), what="a busy stream")
            check = monitor.poll_once()
            assert not check.healthy and [c.method for c in check.stuck] == ["/wdtest.Hung/Stream"]
            release.set()
            assert list(call) == [b"second"]
    finally:
        release.set()
        server.stop(None)

