"""Long-lived streams through this package's interceptors: handler semantics kept, streams capped.

Without a token (mTLS only) the audit interceptor wraps every handler, health ``Watch``
included; it used to drop the flag that lets ``Watch`` answer through a callback, so each open
``Watch`` pinned a worker thread.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_testutil import TIMEOUT, pb, pb_grpc
from weightslab.audit import AuditLog
from weightslab_grpc_server.interceptors import AuthOutcomeAuditInterceptor, StreamLimitInterceptor

WATCH = "/grpc.health.v1.Health/Watch"


class _Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def _watch_handler() -> Any:
    servicer = health.HealthServicer(experimental_non_blocking=True)
    server_handler = {}

    class Capture:
        def add_generic_rpc_handlers(self, handlers: Any) -> None:
            server_handler["h"] = handlers[0]

        def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
            server_handler["m"] = handlers

    health_pb2_grpc.add_HealthServicer_to_server(servicer, Capture())
    if "m" in server_handler:
        return server_handler["m"]["Watch"]
    return server_handler["h"].service(_Details(WATCH))


@pytest.mark.parametrize("make", [lambda tmp: AuthOutcomeAuditInterceptor(AuditLog(tmp, "json")),
                                  lambda tmp: StreamLimitInterceptor(per_peer=2, total=4)],
                         ids=["audit", "stream-limit"])
def test_wrappers_keep_watch_non_blocking(tmp_path: Path, make: Any) -> None:
    original = _watch_handler()
    assert original.unary_stream.experimental_non_blocking
    wrapped = make(tmp_path).intercept_service(lambda details: original, _Details(WATCH))
    assert wrapped.unary_stream is not original.unary_stream
    assert wrapped.unary_stream.experimental_non_blocking is True


def _certs_without_token(pki: Any, tmp_path: Path) -> Path:
    directory = tmp_path / "certs-no-token"
    shutil.copytree(pki.directory, directory)
    (directory / ".grpc_auth_token").unlink()
    return directory


def test_watch_through_the_real_server_without_a_token(make_env: Any, pki: Any, tmp_path: Path) -> None:
    env = make_env(populate_data=False, GRPC_AUTH_TOKEN="", GRPC_MAX_CONCURRENT_RPCS="4",
                   GRPC_TLS_CERT_DIR=str(_certs_without_token(pki, tmp_path)))
    assert any(isinstance(i, AuthOutcomeAuditInterceptor) for i in env.handle._interceptors)
    assert env.handle.stream_limit is not None and env.handle.stream_limit.per_peer == 2
    stub = health_pb2_grpc.HealthStub(env.channel(token=None))
    watches: list[Any] = []
    try:
        for _ in range(2):
            watches.append(stub.Watch(health_pb2.HealthCheckRequest(), timeout=30))
            assert next(watches[-1]).status == health_pb2.HealthCheckResponse.SERVING
        watches.append(stub.Watch(health_pb2.HealthCheckRequest(), timeout=30))
        with pytest.raises(grpc.RpcError) as err:
            next(watches[-1])
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "at most 2 per peer" in (err.value.details() or "")
        status = env.stub(token=None).GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
        assert status.name == "grpc-test"
        env.handle.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert next(watches[0]).status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        for watch in watches:
            watch.cancel()


def test_an_idle_connection_is_closed_by_the_server(make_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections cannot be hoarded: one that carries no call for IDLE_CONNECTION_MS is closed
    by the server (the client's channel falls back to IDLE and reconnects on its next call)."""
    import threading

    from weightslab_grpc_server import server as server_module

    monkeypatch.setattr(server_module, "IDLE_CONNECTION_MS", 300)
    env = make_env()
    channel = env.channel()
    states: list[grpc.ChannelConnectivity] = []
    went_idle = threading.Event()

    def watch(state: grpc.ChannelConnectivity) -> None:
        states.append(state)
        if grpc.ChannelConnectivity.READY in states and state == grpc.ChannelConnectivity.IDLE:
            went_idle.set()

    channel.subscribe(watch, try_to_connect=False)
    stub = pb_grpc.ExperimentServiceStub(channel)
    stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
    assert went_idle.wait(TIMEOUT), f"the server kept an idle connection open (states: {states})"
    stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)  # the client reconnects transparently
    channel.unsubscribe(watch)


def test_connections_beyond_the_cap_are_refused_and_a_closed_one_frees_its_slot(
        make_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """MAX_CONNECTIONS bounds what clients can open at once; the slot of a closed one is reused."""
    from weightslab_grpc_server import server as server_module

    monkeypatch.setattr(server_module, "MAX_CONNECTIONS", 2)
    env = make_env()
    own = [("grpc.use_local_subchannel_pool", 1)]  # a connection of its own per channel
    first, second = (pb_grpc.ExperimentServiceStub(env.channel(options=own)) for _ in range(2))
    first.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
    second.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
    third_channel = env.channel(options=own)
    with pytest.raises(grpc.RpcError) as refused:
        pb_grpc.ExperimentServiceStub(third_channel).GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    env.channels[0].close()
    deadline = time.monotonic() + TIMEOUT
    while True:  # the server notices the closed connection, then accepts a new one
        try:
            pb_grpc.ExperimentServiceStub(env.channel(options=own)).GetStatus(pb.GetStatusRequest(), timeout=2)
            break
        except grpc.RpcError as exc:
            assert time.monotonic() < deadline, f"a freed slot was never reused: {exc.code()}"
