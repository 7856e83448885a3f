"""The CLI server under misuse (issue 12, items 5, 10, 13): each test reproduces the trigger on a
real server on 127.0.0.1 (free port), with real certificates from the dev PKI."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_testutil import LineClient, base_environ, make_experiment, read_audit
from weightslab.experiment import Experiment
from weightslab_auth.pki import PKIPaths, create_dev_pki, load_token
from weightslab_cli import server as server_module
from weightslab_cli.server import CliServer

TOKEN = "hardening-token-for-the-cli-tests-0123456789"
REFUSED_AUTH = {"ok": False, "error": "authentication required: send 'auth <token>' first"}


@pytest.fixture
def token_experiment(tmp_path: Path) -> Iterator[Experiment]:
    exp = make_experiment(tmp_path / "run", base_environ(GRPC_AUTH_TOKEN=TOKEN))
    yield exp
    exp.shutdown()


@pytest.fixture(scope="module")
def pki_with_token(tmp_path_factory: pytest.TempPathFactory) -> PKIPaths:
    return create_dev_pki(tmp_path_factory.mktemp("pki-token"))


@pytest.fixture(scope="module")
def pki_without_token(tmp_path_factory: pytest.TempPathFactory) -> PKIPaths:
    paths = create_dev_pki(tmp_path_factory.mktemp("pki-no-token"))
    paths.token.unlink()
    return paths


def _tls_line_client(port: int, pki: PKIPaths, *, cert: bool) -> tuple[ssl.SSLSocket, Any]:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert:
        context.load_cert_chain(str(pki.envoy_client_cert), str(pki.envoy_client_key))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
    return sock, sock.makefile("rb")


def _ask(sock: ssl.SSLSocket, reader: Any, command: str) -> dict[str, Any]:
    sock.sendall((json.dumps({"command": command}) + "\n").encode())
    reply: dict[str, Any] = json.loads(reader.readline())
    return reply


# -- item 13: the greeting reveals nothing before authentication ------------------------------------


def test_greeting_names_experiment_and_version_only_after_auth(
        token_experiment: Experiment, serve: Callable[..., CliServer], connect: Any) -> None:
    client = connect(serve(token_experiment).port)
    assert client.greeting["auth_required"] is True
    assert "experiment" not in client.greeting and "version" not in client.greeting
    reply = client.cmd(f"auth {TOKEN}")
    assert reply["ok"] and reply["experiment"] == token_experiment.name and reply["version"]


def test_open_server_greets_with_experiment_and_version(experiment: Experiment, serve: Callable[..., CliServer],
                                                        connect: Any) -> None:
    greeting = connect(serve(experiment).port).greeting
    assert greeting["auth_required"] is False and greeting["experiment"] == experiment.name


def test_client_learns_the_experiment_after_auth(token_experiment: Experiment,
                                                 serve: Callable[..., CliServer]) -> None:
    from weightslab_cli.client import CliClient

    with CliClient("127.0.0.1", serve(token_experiment).port, token=TOKEN) as client:
        assert client.authenticated and client.greeting["experiment"] == token_experiment.name


# -- item 5: the token file of the cert dir; no token means client certificates -------------------


def test_token_file_protects_the_cli_server_by_default(tmp_path: Path, pki_with_token: PKIPaths) -> None:
    """The README flow (`weightslab certs init`, no token variable): a local TLS client with no
    certificate and no token used to run pause and discard."""
    env = base_environ(GRPC_TLS_ENABLED="1", GRPC_TLS_CERT_DIR=str(pki_with_token.directory))
    exp = make_experiment(tmp_path / "run", env)
    try:
        server = server_module.start_cli_server(exp, discovery_file=False)
        assert server.auth_required
        sock, reader = _tls_line_client(server.port, pki_with_token, cert=False)
        with sock:
            assert json.loads(reader.readline())["auth_required"] is True
            assert _ask(sock, reader, "pause") == REFUSED_AUTH
            assert _ask(sock, reader, "discard 1,2") == REFUSED_AUTH
            assert exp.control.state.value == "running" and int(exp.table.discarded[: exp.table.n].sum()) == 0
            assert _ask(sock, reader, f"auth {load_token(pki_with_token.directory)}")["ok"]
            assert _ask(sock, reader, "pause")["ok"]
        assert exp.control.state.value == "paused"
        assert server.discovery_info()["token_file"] == str(pki_with_token.token)
    finally:
        exp.shutdown()


def test_loopback_tls_without_any_token_requires_a_client_certificate(
        tmp_path: Path, pki_without_token: PKIPaths) -> None:
    env = base_environ(GRPC_TLS_ENABLED="1", GRPC_TLS_CERT_DIR=str(pki_without_token.directory))
    exp = make_experiment(tmp_path / "run", env)
    try:
        server = server_module.start_cli_server(exp, discovery_file=False)
        assert not server.auth_required
        sock, reader = _tls_line_client(server.port, pki_without_token, cert=False)
        with sock:
            refused = json.loads(reader.readline())
            assert refused["ok"] is False and "client certificate" in refused["error"]
            assert reader.readline() == b""  # and the connection is closed
        assert exp.control.state.value == "running"
        sock, reader = _tls_line_client(server.port, pki_without_token, cert=True)
        with sock:
            assert json.loads(reader.readline())["greeting"] == "weightslab-cli"
            assert _ask(sock, reader, "pause")["ok"]
        assert exp.control.state.value == "paused"
    finally:
        exp.shutdown()


# -- item 10: holding connections before authentication ----------------------------------------------


def test_preauth_deadline_is_absolute_even_for_a_dripping_client(
        token_experiment: Experiment, serve: Callable[..., CliServer], connect: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One byte now and then used to keep an unauthenticated connection forever."""
    monkeypatch.setattr(server_module, "PREAUTH_DEADLINE", 0.6)
    server = serve(token_experiment)
    dripper = connect(server.port)
    started = time.monotonic()
    closed = False
    tick = threading.Event()
    for _ in range(100):  # at most ~10 s of dripping
        try:
            dripper.sock.sendall(b"x")  # never a newline: a read never completes
        except OSError:
            closed = True
            break
        tick.wait(0.1)  # the drip rate is the trigger, not a synchronisation
        dripper.sock.settimeout(0.0)
        try:
            if dripper.sock.recv(1) == b"":
                closed = True
                break
        except BlockingIOError:
            pass
        except OSError:
            closed = True
            break
        finally:
            dripper.sock.settimeout(10.0)
    assert closed, "the dripping connection was never closed"
    assert time.monotonic() - started < 5.0
    user = connect(server.port)  # a real user still gets in
    assert user.cmd(f"auth {TOKEN}")["ok"] and user.cmd("status")["ok"]


def test_connections_per_peer_are_capped(token_experiment: Experiment, serve: Callable[..., CliServer],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "MAX_CONNECTIONS_PER_PEER", 3)
    server = serve(token_experiment)
    held = [LineClient(server.port) for _ in range(3)]
    try:
        extra = LineClient(server.port)
        assert extra.greeting["ok"] is False and "max 3 per peer" in extra.greeting["error"]
        assert extra.closed()
        extra.close()
        held.pop().close()
        deadline = time.monotonic() + 10
        while True:  # the server frees the slot when the connection's thread ends
            again = LineClient(server.port)
            if again.greeting["ok"]:
                break
            again.close()
            assert time.monotonic() < deadline, "the slot of a closed connection was never freed"
        held.append(again)
        assert again.cmd(f"auth {TOKEN}")["ok"]
    finally:
        for client in held:
            client.close()


def test_failed_auth_is_audited_once_then_summarised(token_experiment: Experiment,
                                                     serve: Callable[..., CliServer], tmp_path: Path) -> None:
    """Every failed attempt used to be one fsynced audit record (~330/s from one client)."""
    server = serve(token_experiment)
    attempts = 40
    for i in range(attempts):
        client = LineClient(server.port)
        assert client.cmd(f"auth wrong-{i}-token-0123456789")["ok"] is False
        client.close()
    records = [r for r in read_audit(tmp_path / "run") if r["action"] == "auth_failure"]
    assert len(records) == 1 and records[0]["params"]["failures"] == 1
    server.stop()
    records = [r for r in read_audit(tmp_path / "run") if r["action"] == "auth_failure"]
    assert [r["params"]["failures"] for r in records] == [1, attempts - 1]
    assert records[1]["params"]["reasons"] == [{"reason": "invalid token", "count": attempts - 1}]
    assert all(r["caller"]["token_fingerprint"] is None for r in records)
    assert "wrong-" not in (tmp_path / "run" / "audit.jsonl").read_text()


def test_weightslab_cli_presents_the_dev_client_certificate_by_default(
        tmp_path: Path, pki_without_token: PKIPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli_testutil import empty_env_file
    from weightslab_cli.client import CliClient, ClientError, connect, resolve_target

    env = base_environ(GRPC_TLS_ENABLED="1", GRPC_TLS_CERT_DIR=str(pki_without_token.directory))
    exp = make_experiment(tmp_path / "run", env)
    discovery = tmp_path / "cli.json"
    try:
        server = server_module.start_cli_server(exp, discovery_file=discovery)
        with pytest.raises(ClientError, match="client certificate.*--cert/--key"):
            CliClient("127.0.0.1", server.port, tls=True, ca_file=pki_without_token.ca_cert)
        for name in ("GRPC_AUTH_TOKEN", "GRPC_AUTH_TOKENS", "GRPC_TLS_CA_FILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("WEIGHTSLAB_ENV_FILE", str(empty_env_file()))
        monkeypatch.setenv("GRPC_TLS_CERT_DIR", str(pki_without_token.directory))
        target = resolve_target(None, None, discovery, None)
        assert target.cert_file == pki_without_token.envoy_client_cert
        with connect(target, timeout=10) as client:
            assert client.authenticated and client.request("status")["ok"]
    finally:
        exp.shutdown()
