"""`weightslab studio` against a real training job (TLS + mTLS + token) behind a real Envoy:
one HTTPS origin for page and gRPC-Web, HTTP/2 to the browser, the sandbox refused at the proxy,
the settings' effects, the clear errors, and no orphan Envoy after Ctrl+C or a killed launcher."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from studio_testutil import TrainingJob, alive, call, children_of, free_port, wait_for
from weightslab_auth.pki import PKIPaths, create_dev_pki
from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_studio import grpcweb
from weightslab_studio.envoy_binary import ENVOY_BINARY_VARIABLE
from weightslab_studio.errors import StudioError
from weightslab_studio.launcher import SKIPPED_UI_MARKER, StudioHandle, launch, make_plan
from weightslab_studio.rpcs import MUTATING, READ_ONLY
from weightslab_studio.static_server import CSP

Start = Callable[..., StudioHandle]


def https_get(handle: StudioHandle, path: str, ca: Path, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    context = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection(host or handle.plan.listen_address, handle.plan.envoy_port,
                                       timeout=10, context=context)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def status_of(handle: StudioHandle) -> pb.GetStatusResponse:
    reply = call(handle, "GetStatus")
    assert reply.status == grpcweb.OK, reply
    return pb.GetStatusResponse.FromString(reply.messages[0])


def test_one_https_origin_serves_the_page_config_and_grpc_web(job: TrainingJob, start_studio: Start, pki: PKIPaths,
                                                               token: str, stub_static: Path) -> None:
    handle = start_studio(backend_port=job.grpc_port, static_dir=stub_static)
    assert handle.url == f"https://127.0.0.1:{handle.plan.envoy_port}/#token={token}"
    status, headers, body = https_get(handle, "/", pki.ca_cert)
    assert status == 200 and b"<title>stub</title>" in body
    assert headers["content-security-policy"] == CSP
    status, headers, body = https_get(handle, "/config.js", pki.ca_cert)
    assert status == 200 and headers["cache-control"] == "no-store" and token.encode() not in body
    state = status_of(handle)  # through Envoy, upstream HTTP/2 + mTLS, with the token
    assert state.step > 0 and state.samples == 600


def test_http2_is_offered_to_the_browser(job: TrainingJob, start_studio: Start, pki: PKIPaths, stub_static: Path) -> None:
    handle = start_studio(backend_port=job.grpc_port, static_dir=stub_static)
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", handle.plan.envoy_port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.selected_alpn_protocol() == "h2"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_wrong_or_missing_token_is_unauthenticated(job: TrainingJob, start_studio: Start, stub_static: Path) -> None:
    handle = start_studio(backend_port=job.grpc_port, static_dir=stub_static)
    assert call(handle, "GetStatus", token="wrong-token-0123456789abcdef").status == grpcweb.UNAUTHENTICATED
    assert call(handle, "GetStatus", token=None).status == grpcweb.UNAUTHENTICATED


def test_sandbox_refuses_every_mutating_rpc_at_the_proxy(job: TrainingJob, start_studio: Start,
                                                         stub_static: Path) -> None:
    handle = start_studio(backend_port=job.grpc_port, static_dir=stub_static, sandbox=True)
    for method in sorted(MUTATING):
        reply = call(handle, method)
        assert reply.status == grpcweb.PERMISSION_DENIED, (method, reply)
        assert "RBAC" in reply.message
    assert call(handle, "SomeFutureWrite").status == grpcweb.PERMISSION_DENIED  # unknown = refused
    for method in ("GetStatus", "ListSplits", "GetHyperParameters"):
        assert call(handle, method).status == grpcweb.OK, method
    assert status_of(handle).state == pb.TRAINING_STATE_RUNNING
    step = status_of(handle).step
    wait_for(lambda: status_of(handle).step > step, 30, "training to go on (the refused Pause never arrived)")


@pytest.mark.parametrize("path", ["//weightslab.v1.ExperimentService/Pause",
                                  "/weightslab.v1.ExperimentService/./Pause",
                                  "/weightslab.v1.ExperimentService/x/../Pause",
                                  "/weightslab.v1.ExperimentService%2FPause"])
def test_sandbox_path_tricks_do_not_reach_a_write(job: TrainingJob, start_studio: Start, stub_static: Path,
                                                  path: str) -> None:
    handle = start_studio(backend_port=job.grpc_port, static_dir=stub_static, sandbox=True)
    plan = handle.plan
    from weightslab_studio.launcher import probe_context

    reply = grpcweb.call(plan.listen_address, plan.envoy_port, path, token=plan.token,
                         context=probe_context(plan))
    assert reply.status != grpcweb.OK, (path, reply)
    step = status_of(handle).step
    wait_for(lambda: status_of(handle).step > step, 30, "training to go on")


def test_without_sandbox_the_same_write_passes(job: TrainingJob, start_studio: Start, stub_static: Path) -> None:
    handle = start_studio(backend_port=job.grpc_port, static_dir=stub_static, sandbox=False)
    try:
        assert call(handle, "Pause").status == grpcweb.OK
        assert status_of(handle).state == pb.TRAINING_STATE_PAUSED
    finally:
        assert call(handle, "Resume").status == grpcweb.OK
    for method in sorted(READ_ONLY)[:3]:
        assert call(handle, method).status != grpcweb.PERMISSION_DENIED


def test_admin_listens_on_loopback_only(job: TrainingJob, start_studio: Start, stub_static: Path) -> None:
    handle = start_studio(backend_port=job.grpc_port, static_dir=stub_static)
    conn = http.client.HTTPConnection("127.0.0.1", handle.plan.admin_port, timeout=5)
    conn.request("GET", "/ready")
    assert conn.getresponse().status == 200
    conn.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", handle.plan.admin_port), timeout=2).close()


def test_envoy_host_decides_where_envoy_listens(job: TrainingJob, start_studio: Start, stub_static: Path) -> None:
    handle = start_studio(backend_port=job.grpc_port, static_dir=stub_static, envoy_host="127.0.0.2")
    assert handle.plan.listen_address == "127.0.0.2" and handle.url.startswith("https://127.0.0.2:")
    socket.create_connection(("127.0.0.2", handle.plan.envoy_port), timeout=2).close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", handle.plan.envoy_port), timeout=2).close()


def test_backend_settings_from_the_environment(job: TrainingJob, start_studio: Start, stub_static: Path) -> None:
    handle = start_studio(static_dir=stub_static, backend_host=None,
                   environ_extra={"GRPC_BACKEND_HOST": "0.0.0.0", "GRPC_BACKEND_PORT": str(job.grpc_port)})
    assert (handle.plan.backend_host, handle.plan.backend_port) == ("localhost", job.grpc_port)
    assert status_of(handle).samples == 600


# -- clear errors -----------------------------------------------------------------------------------------


def test_backend_unreachable_is_a_clear_error(start_studio: Start, stub_static: Path) -> None:
    port = free_port()
    with pytest.raises(StudioError) as err:
        start_studio(backend_port=port, static_dir=stub_static)
    assert f"the backend is not reachable at 127.0.0.1:{port} (GRPC_BACKEND_HOST/GRPC_BACKEND_PORT)" in str(err.value)


def test_missing_certificates_are_named(job: TrainingJob, start_studio: Start, stub_static: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-certs"
    empty.mkdir()
    with pytest.raises(StudioError) as err:
        start_studio(backend_port=job.grpc_port, static_dir=stub_static, environ_extra={"GRPC_TLS_CERT_DIR": str(empty)})
    message = str(err.value)
    assert f"envoy-server certificate {empty / 'envoy-server.crt'}: file not found" in message
    assert f"envoy-client key {empty / 'envoy-client.key'}: file not found" in message
    assert "`weightslab certs init`" in message


def test_a_backend_signed_by_another_ca_is_refused_at_start(job: TrainingJob, start_studio: Start, stub_static: Path,
                                                            tmp_path: Path) -> None:
    other = create_dev_pki(tmp_path / "other-pki")
    with pytest.raises(StudioError) as err:
        start_studio(backend_port=job.grpc_port, static_dir=stub_static,
              environ_extra={"GRPC_TLS_CERT_DIR": str(other.directory)})
    assert f"Envoy cannot reach the backend at 127.0.0.1:{job.grpc_port} over mTLS" in str(err.value)


@pytest.mark.parametrize("which", ["ENVOY_PORT", "ENVOY_ADMIN_PORT"])
def test_a_taken_port_is_named(job: TrainingJob, start_studio: Start, stub_static: Path, which: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        key = "envoy_port" if which == "ENVOY_PORT" else "admin_port"
        with pytest.raises(StudioError) as err:
            start_studio(backend_port=job.grpc_port, static_dir=stub_static, **{key: port})
    assert f"{which}={port}: port already in use on 127.0.0.1" in str(err.value)


def test_missing_envoy_is_a_clear_error(job: TrainingJob, environ: dict[str, str], stub_static: Path,
                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENVOY_BINARY_VARIABLE, str(tmp_path / "no-envoy"))
    plan = make_plan(environ=environ, backend_host="127.0.0.1", backend_port=job.grpc_port, static_dir=stub_static)
    with pytest.raises(StudioError, match=f"{ENVOY_BINARY_VARIABLE}=.*: not an executable file"):
        launch(plan)


def test_ui_not_built_or_built_without_ui(environ: dict[str, str], tmp_path: Path) -> None:
    plan = make_plan(environ=environ, static_dir=tmp_path)
    with pytest.raises(StudioError, match="the Studio's web UI is not built: .* npm ci && npm run build"):
        launch(plan)
    (tmp_path / SKIPPED_UI_MARKER).write_text("")
    with pytest.raises(StudioError, match="built without its web UI \\(WEIGHTSLAB_STUDIO_SKIP_UI=1\\)"):
        launch(plan)


# -- the command: Ctrl+C and a killed launcher leave no Envoy behind -----------------------------------------


def _studio_command(job: TrainingJob, environ: dict[str, str], stub_static: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, **environ, "ENVOY_HOST": "127.0.0.1", "ENVOY_PORT": str(free_port()),
           "ENVOY_ADMIN_PORT": str(free_port()), "GRPC_BACKEND_HOST": "127.0.0.1",
           "GRPC_BACKEND_PORT": str(job.grpc_port), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "weightslab_cli.main", "studio", "--static-dir",
                                str(stub_static)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    got = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            got.set()

    threading.Thread(target=read, daemon=True).start()
    if not got.wait(60):
        process.kill()
        raise AssertionError(f"no URL printed: {process.stderr.read() if process.stderr else ''}")
    return process, lines[0]


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sigkill"])
def test_stopping_the_command_stops_envoy(job: TrainingJob, environ: dict[str, str], stub_static: Path,
                                          how: str, token: str) -> None:
    process, line = _studio_command(job, environ, stub_static)
    try:
        assert line.startswith("Weights Studio: https://127.0.0.1:") and line.strip().endswith(f"#token={token}")
        envoys = wait_for(lambda: children_of(process.pid), 10, "the Envoy child")
        assert all(alive(pid) for pid in envoys)
        sig = {"ctrl-c": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}[how]
        process.send_signal(sig)
        code = process.wait(30)
        assert code == (-signal.SIGKILL if how == "sigkill" else 0)
        wait_for(lambda: not any(alive(pid) for pid in envoys), 15, "Envoy to exit with its launcher")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_the_command_reports_errors_without_a_traceback(environ: dict[str, str], stub_static: Path) -> None:
    env = {**os.environ, **environ, "ENVOY_PORT": str(free_port()), "ENVOY_ADMIN_PORT": str(free_port()),
           "GRPC_BACKEND_HOST": "127.0.0.1", "GRPC_BACKEND_PORT": str(free_port())}
    result = subprocess.run([sys.executable, "-m", "weightslab_cli.main", "studio", "--static-dir",
                             str(stub_static)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert "Error: the backend is not reachable at 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


# -- settings read from the environment, observed on the wire ---------------------------------------------


def preflight(handle: StudioHandle, origin: str) -> dict[str, str]:
    context = ssl.create_default_context(cafile=str(handle.plan.ca))
    conn = http.client.HTTPSConnection(handle.plan.listen_address, handle.plan.envoy_port, timeout=10,
                                       context=context)
    try:
        conn.request("OPTIONS", "/weightslab.v1.ExperimentService/GetStatus", headers={
            "origin": origin, "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type,x-grpc-web"})
        response = conn.getresponse()
        response.read()
        return {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def test_envoy_host_port_and_admin_port_from_the_environment(job: TrainingJob, environ: dict[str, str],
                                                             envoy_path: Path, stub_static: Path) -> None:
    port, admin = free_port("127.0.0.2"), free_port()
    plan = make_plan(environ={**environ, "ENVOY_HOST": "127.0.0.2", "ENVOY_PORT": str(port),
                              "ENVOY_ADMIN_PORT": str(admin), "GRPC_BACKEND_HOST": "127.0.0.1",
                              "GRPC_BACKEND_PORT": str(job.grpc_port)}, static_dir=stub_static)
    with launch(plan, envoy_binary=envoy_path, concurrency=1) as handle:
        assert handle.url.startswith(f"https://127.0.0.2:{port}/#token=")
        socket.create_connection(("127.0.0.2", port), timeout=2).close()
        conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
        conn.request("GET", "/ready")
        assert conn.getresponse().status == 200
        conn.close()
        assert call(handle, "GetStatus").status == grpcweb.OK


def test_cors_allows_the_own_origin_only_and_the_dev_server_when_asked(job: TrainingJob, start_studio: Start,
                                                                       stub_static: Path) -> None:
    handle = start_studio(backend_port=job.grpc_port, static_dir=stub_static,
                          environ_extra={"VITE_HOST": "0.0.0.0", "VITE_PORT": "5174"})
    own = preflight(handle, handle.origin)
    assert own.get("access-control-allow-origin") == handle.origin
    assert "authorization" in own.get("access-control-allow-headers", "")
    for other in ("https://evil.example", "http://localhost:5174", handle.origin.replace("https", "http")):
        assert "access-control-allow-origin" not in preflight(handle, other), other
    dev = start_studio(backend_port=job.grpc_port, static_dir=stub_static, allow_dev_server=True,
                       environ_extra={"VITE_HOST": "0.0.0.0", "VITE_PORT": "5174"})
    assert preflight(dev, "http://localhost:5174").get("access-control-allow-origin") == "http://localhost:5174"
    assert "access-control-allow-origin" not in preflight(dev, "http://localhost:5173")


def test_a_backend_without_tls_is_reached_in_plaintext_http2(environ: dict[str, str], start_studio: Start,
                                                             stub_static: Path, tmp_path: Path) -> None:
    """GRPC_TLS_ENABLED=0 (local debugging): Envoy still serves HTTPS, upstream is plaintext HTTP/2."""
    plain = {**environ, "GRPC_TLS_ENABLED": "0"}
    job = TrainingJob(tmp_path / "plain-job", plain, samples=64)
    try:
        handle = start_studio(backend_port=job.grpc_port, static_dir=stub_static,
                              environ_extra={"GRPC_TLS_ENABLED": "0"})
        assert handle.plan.upstream_tls is None
        assert status_of(handle).samples == 64
    finally:
        job.stop()
