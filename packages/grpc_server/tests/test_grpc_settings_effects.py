"""gRPC server settings observed from outside: the bind address and port from the environment
(no kwargs), GRPC_VERBOSITY actually reaching gRPC's C core (subprocess), and WL_ENABLE_HP_SYNC
as seen through GetHyperParameters."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_testutil import TIMEOUT, make_pm, pb
from weightslab.config import ConfigError
from weightslab.experiment import Experiment
from weightslab_grpc_server.server import GrpcServerHandle

OTHER_LOOPBACK = "127.0.0.2"  # Linux routes all of 127.0.0.0/8 to lo: a second local address


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serving(host: str, port: int) -> bool:
    """A real gRPC health check (public: no token) on ``host:port``; False if refused."""
    with grpc.insecure_channel(f"{host}:{port}", options=[("grpc.enable_http_proxy", 0)]) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.UNAVAILABLE, err
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=TIMEOUT).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def serve_from_env(tmp_path: Path) -> Iterator[Callable[..., GrpcServerHandle]]:
    """Start the server through the real serve hook with settings from the environment only."""
    started: list[tuple[Experiment, GrpcServerHandle | None]] = []
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")

    def serve(**env: Any) -> GrpcServerHandle:
        environ = {"GRPC_TLS_ENABLED": "0", "WEIGHTSLAB_LOG_LEVEL": "ERROR", "WL_ENABLE_HP_SYNC": "0",
                   "WEIGHTSLAB_ENV_FILE": str(empty_env), **{k: str(v) for k, v in env.items()}}
        exp = Experiment(kwargs={"root_log_dir": tmp_path / f"root{len(started)}"}, environ=environ, pm=make_pm())
        exp.start()
        exp.serve_options["grpc"] = True
        started.append((exp, None))
        [handle] = [h for h in exp.pm.hook.weightslab_serve(experiment=exp, config=exp.config) if h is not None]
        started[-1] = (exp, handle)
        return handle

    yield serve
    for exp, handle in started:
        if handle is not None:
            handle.stop(grace=0)
        exp.shutdown()


def test_backend_host_and_port_from_the_environment_decide_the_bind(
        serve_from_env: Callable[..., GrpcServerHandle]) -> None:
    port = free_port()
    handle = serve_from_env(GRPC_BACKEND_HOST="127.0.0.1", GRPC_BACKEND_PORT=port)
    assert (handle.host, handle.port) == ("127.0.0.1", port)
    assert serving("127.0.0.1", port)
    assert refused(OTHER_LOOPBACK, port)  # bound to 127.0.0.1 only
    handle.stop(grace=0)

    other = free_port()
    handle = serve_from_env(GRPC_BACKEND_HOST=OTHER_LOOPBACK, GRPC_BACKEND_PORT=other)
    assert serving(OTHER_LOOPBACK, other)
    assert refused("127.0.0.1", other)


def test_backend_host_default_is_loopback_only(serve_from_env: Callable[..., GrpcServerHandle]) -> None:
    port = free_port()
    handle = serve_from_env(GRPC_BACKEND_PORT=port)  # GRPC_BACKEND_HOST unset
    assert handle.host == "127.0.0.1" and handle.port == port
    assert serving("127.0.0.1", port)
    assert refused(OTHER_LOOPBACK, port)


@pytest.mark.parametrize("tls", ["0", "1"])
def test_non_loopback_bind_without_authentication_is_refused(
        serve_from_env: Callable[..., GrpcServerHandle], tmp_path: Path, tls: str) -> None:
    """Neither TLS with client certificates nor a token: start-up refuses and names every fix."""
    env = {"GRPC_BACKEND_HOST": "0.0.0.0", "GRPC_BACKEND_PORT": free_port(), "GRPC_TLS_ENABLED": tls,
           "GRPC_TLS_REQUIRE_CLIENT_AUTH": "0", "GRPC_TLS_CERT_DIR": str(_certs_without_token(tmp_path))}
    with pytest.raises(ConfigError) as err:
        serve_from_env(**env)
    message = str(err.value)
    for name in ("GRPC_BACKEND_HOST='0.0.0.0'", "GRPC_TLS_ENABLED", "GRPC_TLS_REQUIRE_CLIENT_AUTH",
                 "GRPC_AUTH_TOKEN", "GRPC_AUTH_TOKENS", "GRPC_ALLOW_UNAUTHENTICATED_REMOTE"):
        assert name in message
    assert refused("127.0.0.1", env["GRPC_BACKEND_PORT"])  # nothing listens


def _certs_without_token(tmp_path: Path) -> Path:
    from weightslab_auth.pki import create_dev_pki

    paths = create_dev_pki(tmp_path / "certs")
    paths.token.unlink()
    return paths.directory


def _composed(tmp_path: Path, **env: Any) -> GrpcServerHandle:
    """Compose (credentials, interceptors, exposure check) without binding any interface."""
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    environ = {"GRPC_TLS_ENABLED": "0", "WEIGHTSLAB_LOG_LEVEL": "ERROR", "WEIGHTSLAB_ENV_FILE": str(empty_env),
               "GRPC_TLS_CERT_DIR": str(tmp_path / "no-certs"), **{k: str(v) for k, v in env.items()}}
    exp = Experiment(kwargs={"root_log_dir": tmp_path / "root"}, environ=environ, pm=make_pm())
    handle = GrpcServerHandle(exp, exp.config)
    handle._compose()
    return handle


def test_non_loopback_bind_is_allowed_with_a_token_or_the_dangerous_opt_in(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _composed(tmp_path, GRPC_BACKEND_HOST="0.0.0.0", GRPC_AUTH_TOKEN="remote-token-0123456789")
    with pytest.raises(ConfigError):
        _composed(tmp_path, GRPC_BACKEND_HOST="0.0.0.0")
    logger = logging.getLogger("weightslab")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING, logger="weightslab")
    try:
        _composed(tmp_path, GRPC_BACKEND_HOST="0.0.0.0", GRPC_ALLOW_UNAUTHENTICATED_REMOTE="1")
    finally:
        logger.removeHandler(caplog.handler)
    assert any(r.levelno == logging.WARNING and "GRPC_ALLOW_UNAUTHENTICATED_REMOTE=1" in r.getMessage()
               for r in caplog.records)


VERBOSITY_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import pluggy
    from weightslab import _builtin, hookspecs
    from weightslab.experiment import Experiment
    from weightslab_auth import plugin as auth_plugin
    from weightslab_grpc_server import plugin as grpc_plugin

    assert "grpc" not in sys.modules
    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    pm.register(_builtin, name="core")
    pm.register(auth_plugin, name="auth")
    pm.register(grpc_plugin, name="grpc_server")
    exp = Experiment(kwargs={"root_log_dir": Path(sys.argv[1]), "grpc_host": "127.0.0.1", "grpc_port": 0}, pm=pm)
    exp.start()
    exp.serve_options["grpc"] = True
    pm.hook.weightslab_configure(config=exp.config)  # what wl.serve does, in the same order
    [handle] = [h for h in pm.hook.weightslab_serve(experiment=exp, config=exp.config) if h is not None]
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    with grpc.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    handle.stop(grace=0)
    exp.shutdown()
    print("served", flush=True)
""")


@pytest.mark.parametrize(("value", "banner"), [("debug", "Log level DEBUG"), ("info", "Log level INFO"),
                                               ("error", None), (None, None)])
def test_grpc_verbosity_from_dotenv_reaches_the_c_core(tmp_path: Path, value: str | None,
                                                       banner: str | None) -> None:
    """gRPC's C core announces a DEBUG/INFO level it read at start-up; ERROR (or unset) prints nothing."""
    env_file = tmp_path / "wl.env"
    lines = ["GRPC_TLS_ENABLED=0", "WEIGHTSLAB_LOG_LEVEL=ERROR", "WL_ENABLE_HP_SYNC=0"]
    if value is not None:
        lines.append(f"GRPC_VERBOSITY={value}")
    env_file.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRPC_", "WEIGHTSLAB_", "WL_"))}
    env["WEIGHTSLAB_ENV_FILE"] = str(env_file)
    done = subprocess.run([sys.executable, "-c", VERBOSITY_SCRIPT, str(tmp_path / "root")], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "served"
    if banner is None:
        assert "Log level" not in done.stderr, done.stderr
    else:
        assert banner in done.stderr, done.stderr


def _edit_yaml(path: Path, lr: float) -> None:
    """Rewrite the live YAML with a distinct mtime (coarse file-system clocks cannot hide the edit)."""
    before = path.stat().st_mtime_ns
    path.write_text(f"lr: {lr}\noptimizer:\n  momentum: 0.9\nbatch_size: 32\nname: run\naugment: true\n")
    os.utime(path, ns=(before, before + 2_000_000_000))


@pytest.mark.parametrize("sync", ["1", "0"])
def test_enable_hp_sync_polls_or_reads_on_demand(make_env: Callable[..., Any], sync: str) -> None:
    """WL_ENABLE_HP_SYNC=1: a background poller picks YAML edits up by itself; 0: no poller, and a
    GetHyperParameters call reads the file on demand (still visible through gRPC)."""
    env = make_env(populate_data=False, WL_ENABLE_HP_SYNC=sync)
    hp = env.hp
    assert (hp._thread is not None) is (sync == "1")
    _edit_yaml(hp.yaml_path, 0.5)
    if sync == "1":
        deadline = time.monotonic() + TIMEOUT
        while not hp.pending():  # nobody reads: the poller alone queues the edit
            assert time.monotonic() < deadline, "the poller never saw the edit"
            threading.Event().wait(0.02)
    else:
        assert hp.pending() == {}  # nothing polls the file
    got = {p.key: p for p in env.stub().GetHyperParameters(pb.GetHyperParametersRequest(),
                                                          timeout=TIMEOUT).parameters}
    assert got["lr"].applied.number == pytest.approx(0.1) and got["lr"].requested.number == pytest.approx(0.5)
    env.experiment.step_boundary()
    assert hp["lr"] == 0.5
