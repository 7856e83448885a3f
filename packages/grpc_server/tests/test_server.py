"""Server lifecycle and limits: message size, concurrency cap, lock timeout, bind failure,
restart, TLS/auth, GRPC_VERBOSITY."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_testutil import TIMEOUT, hold_lock, pb, pb_grpc, rpc_error
from weightslab_grpc_server.server import GrpcBindError, GrpcServerHandle
from weightslab_grpc_server.verbosity import apply_grpc_verbosity


def _health(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT,
                          wait_for_ready=True).status)


def test_oversize_request_and_response_rejected(make_env) -> None:
    env = make_env(GRPC_MAX_MESSAGE_BYTES=4096)
    stub = env.stub()
    big = pb.QuerySamplesRequest(query=pb.SampleQuery(text="label > 1 " + " " * 10_000))
    err = rpc_error(stub.QuerySamples, big)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # a response above the limit is refused too (100 rows of every column > 4 KiB)
    err = rpc_error(stub.QuerySamples, pb.QuerySamplesRequest(page=pb.Page(limit=100)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    small = stub.QuerySamples(pb.QuerySamplesRequest(page=pb.Page(limit=2), columns=["label"]), timeout=TIMEOUT)
    assert len(small.rows) == 2
    assert env.handle.options()[0] == ("grpc.max_send_message_length", 4096)


def test_concurrency_cap_gives_resource_exhausted(make_env) -> None:
    env = make_env(GRPC_MAX_CONCURRENT_RPCS=1, GRPC_WATCHDOG_STUCK_SECONDS=10)
    assert env.handle.max_concurrent_rpcs == 1 and env.handle.workers == 1
    stub = env.stub()
    stub.GetCurves(pb.GetCurvesRequest(), timeout=TIMEOUT)  # connection up
    release, holder = hold_lock(env.experiment.data_lock)  # GetStatus waits for the table lock
    results: list[Any] = []
    blocked = threading.Thread(target=lambda: results.append(stub.GetStatus(pb.GetStatusRequest(),
                                                                            timeout=TIMEOUT)))
    blocked.start()
    try:
        deadline = time.monotonic() + 5
        while True:  # GetCurves never takes the lock: it is refused only by the cap
            try:
                stub.GetCurves(pb.GetCurvesRequest(), timeout=TIMEOUT)
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                break
            assert time.monotonic() < deadline, "the cap never refused a call"
            time.sleep(0.02)
    finally:
        release.set()
        holder.join(5)
        blocked.join(TIMEOUT)
    assert results and results[0].samples == 120
    assert stub.GetCurves(pb.GetCurvesRequest(), timeout=TIMEOUT).next_seq > 0


def test_default_cap_equals_workers(make_env) -> None:
    env = make_env(populate_data=False)
    assert env.handle.max_concurrent_rpcs == env.handle.workers == 16


def test_lock_held_elsewhere_gives_resource_exhausted(make_env) -> None:
    env = make_env(GRPC_WATCHDOG_STUCK_SECONDS=0.3)
    stub = env.stub()
    # the main lock (held by a training step, or stuck): mutations wait at most the threshold
    release, holder = hold_lock(env.experiment.lock)
    try:
        started = time.monotonic()
        err = rpc_error(stub.EditSamples, pb.EditSamplesRequest(action=pb.EDIT_ACTION_DISCARD,
                                                                ids=pb.SampleIds(ids=["1"])))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "experiment busy" in err.details() and "within 0.3s" in err.details()
        assert time.monotonic() - started < 5
        # reads never wait for a training step: they use the table lock only
        assert stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT).samples == 120
        assert stub.QuerySamples(pb.QuerySamplesRequest(), timeout=TIMEOUT).total == 120
        assert stub.GetCurves(pb.GetCurvesRequest(), timeout=TIMEOUT).series
        assert stub.Pause(pb.PauseRequest(), timeout=TIMEOUT).state == pb.TRAINING_STATE_PAUSED
    finally:
        release.set()
        holder.join(5)
    assert not env.experiment.table.discarded[:1].any()
    # the table lock held (a stuck writer): reads fail fast too
    release, holder = hold_lock(env.experiment.data_lock)
    try:
        for call, request in ((stub.GetStatus, pb.GetStatusRequest()),
                              (stub.GetTrajectory, pb.GetTrajectoryRequest(sample_id="1", split="train"))):
            err = rpc_error(call, request)
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "within 0.3s" in err.details()
    finally:
        release.set()
        holder.join(5)
    assert stub.EditSamples(pb.EditSamplesRequest(action=pb.EDIT_ACTION_DISCARD, ids=pb.SampleIds(ids=["1"])),
                            timeout=TIMEOUT).changed == 1


def test_bind_failure_names_the_port(make_env) -> None:
    first = make_env(populate_data=False)
    taken = first.handle.port
    second = make_env(populate_data=False, start=False, port=taken)
    with pytest.raises(GrpcBindError) as err:
        second.serve()
    text = str(err.value)
    assert f"GRPC_BACKEND_PORT={taken}" in text and "GRPC_BACKEND_HOST='127.0.0.1'" in text
    assert "grpc" not in second.experiment.services
    # a non-gRPC listener on the port is detected the same way
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        third = make_env(populate_data=False, start=False, port=port)
        with pytest.raises(GrpcBindError, match=f"GRPC_BACKEND_PORT={port}"):
            third.serve()


def _wait_for_a_server_thread_blocked_on_a_lock(timeout: float = 5.0) -> None:
    """Poll the threads' stacks until a gRPC worker waits in ``weightslab/lock.py`` (the call is
    really stuck in the server, not still on its way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in sys._current_frames().values():
            files = []
            while frame is not None:
                files.append(frame.f_code.co_filename.replace(os.sep, "/"))
                frame = frame.f_back
            if files and files[0].endswith(("weightslab/lock.py", "threading.py")) \
                    and any(f.endswith("weightslab/lock.py") for f in files) \
                    and any("/grpc/" in f for f in files):
                return
        threading.Event().wait(0.01)
    raise AssertionError("no gRPC worker thread is blocked on a lock")


def test_restart_keeps_state_and_port(make_env) -> None:
    env = make_env(GRPC_WATCHDOG_STUCK_SECONDS=10)
    handle = env.handle
    port = handle.port
    stub = env.stub()
    stub.EditSamples(pb.EditSamplesRequest(action=pb.EDIT_ACTION_TAG, tag="kept", ids=pb.SampleIds(ids=["3"])),
                     timeout=TIMEOUT)
    cursor = stub.GetCurves(pb.GetCurvesRequest(), timeout=TIMEOUT).next_seq
    # a call stuck on a lock must not prevent the restart
    release, holder = hold_lock(env.experiment.data_lock)
    outcome: list[Any] = []

    def stuck_call() -> None:
        try:
            outcome.append(stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT))
        except grpc.RpcError as err:
            outcome.append(err.code())

    caller = threading.Thread(target=stuck_call)
    caller.start()
    _wait_for_a_server_thread_blocked_on_a_lock()
    started = time.monotonic()
    handle.restart()
    assert time.monotonic() - started < 5
    release.set()
    holder.join(5)
    caller.join(TIMEOUT)
    # the stuck call is dropped by the restart with a retryable error (not left hanging, not served late)
    assert outcome == [grpc.StatusCode.UNAVAILABLE]
    assert handle.port == port and handle.restarts == 1 and env.experiment.services["grpc"] is handle
    assert _health(env.channel()) == health_pb2.HealthCheckResponse.SERVING
    fresh = env.stub()
    status = fresh.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
    assert status.samples == 120
    rows = fresh.QuerySamples(pb.QuerySamplesRequest(query=pb.SampleQuery(text="has:kept")), timeout=TIMEOUT)
    assert [r.sample_id for r in rows.rows] == ["3"]
    assert fresh.GetCurves(pb.GetCurvesRequest(), timeout=TIMEOUT).next_seq == cursor
    # the old channel reconnects to the same address
    assert stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT, wait_for_ready=True).samples == 120
    handle.restart()
    assert handle.port == port and handle.restarts == 2


def test_stop_and_health_not_serving(make_env) -> None:
    env = make_env(populate_data=False)
    handle = env.handle
    handle.stop()
    assert not handle.running
    handle.stop()  # idempotent
    handle.start()
    assert _health(env.channel(), "weightslab.v1.ExperimentService") == health_pb2.HealthCheckResponse.SERVING


def test_token_required_and_failures_audited(make_env, pki) -> None:
    env = make_env(populate_data=False)
    no_token = env.stub(token=None)
    err = rpc_error(no_token.GetStatus, pb.GetStatusRequest())
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    wrong = env.stub(token="wrong-token-0123456789")
    assert rpc_error(wrong.Pause, pb.PauseRequest()).code() == grpc.StatusCode.UNAUTHENTICATED
    assert env.experiment.control.state.value == "running"
    # health stays callable without a token (probes)
    assert _health(env.channel(token=None)) == health_pb2.HealthCheckResponse.SERVING
    # mTLS: no client certificate, no connection
    err = rpc_error(env.stub(cert=False).GetStatus, pb.GetStatusRequest())
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    env.handle.stop()  # reports the failures still being counted
    records = [json.loads(line) for line in (env.experiment.root_log_dir / "audit.jsonl").read_text().splitlines()]
    denied = [r for r in records if r["action"] == "auth_failure"]
    # The first failure of the host at once, the next ones as one summary per interval.
    assert [(r["outcome"], r["params"]["failures"]) for r in denied] == [("denied", 1), ("denied", 1)]
    assert denied[0]["params"]["method"] == "/weightslab.v1.ExperimentService/GetStatus"
    assert denied[0]["error"] == "no token" and denied[1]["error"] == "invalid token"
    assert denied[1]["params"]["methods"] == [{"method": "/weightslab.v1.ExperimentService/Pause", "count": 1}]
    # Rejected tokens are never fingerprinted.
    assert all(r["caller"]["token_fingerprint"] is None for r in denied)
    assert "wrong-token" not in json.dumps(records)


class Denier(grpc.ServerInterceptor):
    """A third-party auth interceptor without add_auth_failure_listener."""

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        if details.method.endswith("/Pause"):
            def deny(request: Any, context: grpc.ServicerContext) -> Any:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, "read-only client")

            return grpc.unary_unary_rpc_method_handler(deny)
        return continuation(details)


def certs_without_token(pki: Any, tmp_path: Any) -> Any:
    """A copy of the dev PKI without its token file: the server then authenticates by mTLS only."""
    directory = tmp_path / "certs-no-token"
    shutil.copytree(pki.directory, directory)
    (directory / ".grpc_auth_token").unlink()
    return directory


def test_denials_of_other_interceptors_are_audited(make_env, pki, tmp_path) -> None:
    # mTLS only: a cert dir without the token file of `weightslab certs init`
    env = make_env(populate_data=False, start=False, GRPC_AUTH_TOKEN="",
                   GRPC_TLS_CERT_DIR=str(certs_without_token(pki, tmp_path)))
    env.plugin.interceptors = [Denier()]
    env.serve()
    stub = env.stub(token=None)
    assert rpc_error(stub.Pause, pb.PauseRequest()).code() == grpc.StatusCode.PERMISSION_DENIED
    stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
    records = [json.loads(line) for line in (env.experiment.root_log_dir / "audit.jsonl").read_text().splitlines()]
    assert [(r["action"], r["outcome"], r["error"]) for r in records] == [
        ("auth_failure", "denied", "read-only client")]
    for _ in range(3):  # a client retrying: counted, then one summary record
        assert rpc_error(stub.Pause, pb.PauseRequest()).code() == grpc.StatusCode.PERMISSION_DENIED
    env.handle.stop()
    records = [json.loads(line) for line in (env.experiment.root_log_dir / "audit.jsonl").read_text().splitlines()]
    assert [(r["error"], r["params"]["failures"]) for r in records] == [("read-only client", 1),
                                                                        ("read-only client", 3)]


def test_insecure_mode_warns_loudly(make_env, grpc_log) -> None:
    env = make_env(populate_data=False, start=False, GRPC_TLS_ENABLED=0)
    env.serve()
    assert not env.handle.secure
    assert any("WITHOUT TLS" in r.getMessage() and r.levelno == logging.WARNING for r in grpc_log.records)
    channel = grpc.insecure_channel(env.target)
    env.channels.append(channel)
    stub = pb_grpc.ExperimentServiceStub(channel)
    metadata = (("authorization", f"Bearer {env.token}"),)
    assert stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT, metadata=metadata).name == "grpc-test"


def test_handle_not_started_without_grpc_option(make_env) -> None:
    env = make_env(populate_data=False, start=False)
    env.experiment.serve_options["grpc"] = False
    assert [h for h in env.pm.hook.weightslab_serve(experiment=env.experiment, config=env.experiment.config)
            if h is not None] == []


def test_ipv6_address_format(make_env) -> None:
    env = make_env(populate_data=False, start=False)
    handle = GrpcServerHandle(env.experiment)
    handle.host = "::1"
    assert handle.address.startswith("[::1]:")


def test_grpc_verbosity_after_import_warns(monkeypatch, grpc_log) -> None:
    from weightslab.config import resolve
    from weightslab_grpc_server.settings import GrpcServerSettings

    monkeypatch.delenv("GRPC_VERBOSITY", raising=False)
    config = resolve([GrpcServerSettings], environ={"GRPC_VERBOSITY": "debug"}, env_file=None)
    assert "grpc" in sys.modules
    assert apply_grpc_verbosity(config) is False
    assert "GRPC_VERBOSITY" not in os.environ
    assert any("GRPC_VERBOSITY=DEBUG not applied" in r.getMessage() for r in grpc_log.records)
    none = resolve([GrpcServerSettings], environ={}, env_file=None)
    assert apply_grpc_verbosity(none) is False and "GRPC_VERBOSITY" not in os.environ


def test_grpc_verbosity_applied_before_grpc_import() -> None:
    script = """
import os, sys
import weightslab, weightslab_grpc_server.plugin, weightslab_grpc_server.settings
assert "grpc" not in sys.modules, "importing the plugin must not load grpc"
assert "GRPC_VERBOSITY" not in os.environ, "importing must not touch the environment"
from weightslab.config import resolve
config = resolve([weightslab_grpc_server.settings.GrpcServerSettings], environ={"GRPC_VERBOSITY": "error"},
                 env_file=None)
from weightslab_grpc_server.verbosity import apply_grpc_verbosity
assert apply_grpc_verbosity(config) is True
assert os.environ["GRPC_VERBOSITY"] == "ERROR"
import grpc
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_grpc_verbosity_from_env_file_applied_before_other_plugins_import_grpc(tmp_path) -> None:
    """wl.serve validates (weightslab_configure: auth imports grpc) before serving: the plugin's
    tryfirst configure hook exports a .env value first."""
    env_file = tmp_path / ".env"
    env_file.write_text("GRPC_VERBOSITY=info\nGRPC_TLS_ENABLED=0\nGRPC_AUTH_TOKEN=0123456789abcdef0123\n")
    script = f"""
import os, sys
seen = []
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "grpc":
            seen.append(os.environ.get("GRPC_VERBOSITY"))
        return None
sys.meta_path.insert(0, Spy())
import pluggy
from weightslab import _builtin, hookspecs
from weightslab.settings import load_config
from weightslab_auth import plugin as auth_plugin
from weightslab_grpc_server import plugin as grpc_plugin
pm = pluggy.PluginManager("weightslab")
pm.add_hookspecs(hookspecs)
pm.register(_builtin, name="core")
pm.register(auth_plugin, name="auth")
pm.register(grpc_plugin, name="grpc_server")
config = load_config(environ={{"WEIGHTSLAB_ENV_FILE": {str(env_file)!r}}}, pm=pm, validate=False)
assert config.source("GRPC_VERBOSITY") == ".env", config.source("GRPC_VERBOSITY")
pm.hook.weightslab_configure(config=config)
import grpc  # what starting the server does; the spy records GRPC_VERBOSITY at that moment
assert seen and seen[0] == "INFO", seen
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
