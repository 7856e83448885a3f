"""The CLI server protocol: greeting, auth, TLS, malformed input, discovery, port clash, binding."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_testutil import LineClient, base_environ, make_experiment, read_audit
from weightslab.experiment import Experiment
from weightslab_auth.pki import create_dev_pki
from weightslab_cli import plugin
from weightslab_cli.discovery import read_discovery, remove_discovery_if_owner, write_discovery
from weightslab_cli.protocol import MAX_LINE_BYTES
from weightslab_cli.server import CliServer, CliServerError, is_loopback, start_cli_server

TOKEN = "s3cret-token-for-the-cli-tests-0123456789"
OTHER_TOKEN = "rotated-token-for-the-cli-tests-987654321"


@pytest.fixture
def token_experiment(tmp_path: Path) -> Any:
    exp = make_experiment(tmp_path / "run", base_environ(GRPC_AUTH_TOKENS=f"{TOKEN},{OTHER_TOKEN}"))
    yield exp
    exp.shutdown()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return create_dev_pki(tmp_path_factory.mktemp("pki"))


# -- greeting and plain commands -------------------------------------------------------------------


def test_greeting_first(experiment: Experiment, serve: Callable[..., CliServer], connect: Any) -> None:
    server = serve(experiment)
    client = connect(server.port)
    g = client.greeting
    assert g["ok"] is True and g["greeting"] == "weightslab-cli" and g["protocol"] == 1
    assert g["auth_required"] is False and g["tls"] is False
    assert g["max_line_bytes"] == MAX_LINE_BYTES


def test_no_token_configured_needs_no_auth(experiment: Experiment, serve: Callable[..., CliServer],
                                           connect: Any) -> None:
    client = connect(serve(experiment).port)
    reply = client.cmd("status")
    assert reply["ok"] and reply["status"]["samples"] == 50
    assert client.cmd("auth anything")["ok"]  # harmless when no token is configured


def test_request_forms_and_id_echo(experiment: Experiment, serve: Callable[..., CliServer], connect: Any) -> None:
    client = connect(serve(experiment).port)
    assert client.cmd("status", id=42)["id"] == 42
    assert client.args("hp", "list")["ok"]
    assert client.send_raw(b"status\n")["ok"]  # a bare command line (nc / openssl s_client)
    assert client.send_raw(b'{"cmd": "query", "args": ["loss > 3"], "id": "q"}\n')["total"] == 9


# -- auth ---------------------------------------------------------------------------------------------


def test_token_required_before_any_command(token_experiment: Experiment, serve: Callable[..., CliServer],
                                           connect: Any) -> None:
    client = connect(serve(token_experiment).port)
    assert client.greeting["auth_required"] is True
    for command in ("status", "help", "pause", "query loss > 1"):
        reply = client.cmd(command)
        assert reply == {"ok": False, "error": "authentication required: send 'auth <token>' first"}
    assert token_experiment.control.state.value == "running"


def test_token_rejected_then_accepted(token_experiment: Experiment, serve: Callable[..., CliServer],
                                      connect: Any, tmp_path: Path) -> None:
    records: list[str] = []
    handler = logging.StreamHandler(io.StringIO())
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("weightslab").addHandler(handler)
    try:
        client = connect(serve(token_experiment).port)
        bad = client.cmd("auth wrong-token-wrong-token")
        assert bad == {"ok": False, "error": "invalid token"}
        assert not client.cmd("status")["ok"]  # still not authenticated, connection alive
        accepted = client.cmd(f"auth {OTHER_TOKEN}")  # rotation list
        assert accepted["ok"] is True and accepted["authenticated"] is True
        assert client.cmd("status")["ok"]
    finally:
        logging.getLogger("weightslab").removeHandler(handler)
    assert not any(TOKEN in r or OTHER_TOKEN in r or "wrong-token-wrong-token" in r for r in records)
    audit = read_audit(tmp_path / "run")
    failures = [r for r in audit if r["action"] == "auth_failure"]
    assert failures and failures[0]["outcome"] == "denied" and failures[0]["error"] == "invalid token"
    # A rejected token is not fingerprinted (its fingerprint would help confirm guesses offline).
    assert failures[0]["caller"]["transport"] == "cli" and failures[0]["caller"]["token_fingerprint"] is None
    text = (tmp_path / "run" / "audit.jsonl").read_text()
    assert "wrong-token-wrong-token" not in text and TOKEN not in text


def test_token_in_structured_form(token_experiment: Experiment, serve: Callable[..., CliServer],
                                  connect: Any) -> None:
    client = connect(serve(token_experiment).port)
    assert client.args("auth", TOKEN)["ok"]
    assert client.args("status")["ok"]


def test_too_many_failed_auths_close_the_connection(token_experiment: Experiment,
                                                     serve: Callable[..., CliServer], connect: Any) -> None:
    client = connect(serve(token_experiment).port)
    for _ in range(5):
        assert not client.cmd("auth nope")["ok"]
    assert client.closed()


def test_silent_unauthenticated_connection_is_closed(token_experiment: Experiment,
                                                     serve: Callable[..., CliServer], connect: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from weightslab_cli import server as server_module

    # 1 s: room for the authenticated client's own auth on a loaded machine (it has the same
    # deadline); it connects first, so when the silent one is closed its deadline passed too.
    monkeypatch.setattr(server_module, "PREAUTH_DEADLINE", 1.0)
    srv = serve(token_experiment)
    authed = connect(srv.port)
    assert authed.cmd(f"auth {TOKEN}")["ok"]
    silent = connect(srv.port)
    assert silent.closed()  # EOF once the pre-auth deadline passed
    assert authed.cmd("status")["ok"]  # no deadline once authenticated


# -- TLS ----------------------------------------------------------------------------------------------


def test_tls_on(tmp_path: Path, pki: Any, serve: Callable[..., CliServer], connect: Any) -> None:
    env = base_environ(GRPC_TLS_ENABLED="1", GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_AUTH_TOKEN=TOKEN)
    exp = make_experiment(tmp_path / "run", env)
    try:
        server = serve(exp)
        assert server.tls
        client = connect(server.port, ca=pki.ca_cert)
        assert client.greeting["tls"] is True
        assert client.cmd(f"auth {TOKEN}")["ok"] and client.cmd("status")["ok"]
        info = read_discovery(tmp_path / "cli.json")
        assert info["tls"] is True and info["ca_file"] == str(pki.ca_cert)
        # a plain TCP client gets no greeting: the server speaks TLS only
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            raw.sendall(b'{"command": "status"}\n')
            try:
                data = raw.recv(4096)
            except ConnectionResetError:
                data = b""
            assert b"weightslab-cli" not in data
        # a client that does not trust the CA refuses the server
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            with pytest.raises(ssl.SSLCertVerificationError):
                ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
    finally:
        exp.shutdown()


def test_tls_off_speaks_plain_tcp(experiment: Experiment, serve: Callable[..., CliServer]) -> None:
    server = serve(experiment)
    assert not server.tls
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        assert json.loads(raw.makefile("rb").readline())["greeting"] == "weightslab-cli"


def test_tls_files_missing_fail_fast_naming_the_variable(tmp_path: Path) -> None:
    env = base_environ(GRPC_TLS_ENABLED="1", GRPC_TLS_CERT_DIR=str(tmp_path / "nowhere"))
    exp = make_experiment(tmp_path / "run", env)
    try:
        with pytest.raises(ValueError, match="GRPC_TLS_"):
            start_cli_server(exp, discovery_file=False)
    finally:
        exp.shutdown()


# -- malformed input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("line, message", [
    (b'{"command": "status"\n', "invalid JSON"),
    (b"[1, 2]\n", "unknown command"),
    (b'{"command": 5}\n', "command: expected a string"),
    (b'{"cmd": ""}\n', "cmd: expected a command name"),
    (b'{"cmd": "tag", "args": {"a": 1}}\n', "args: expected a list"),
    (b'{"foo": 1}\n', "needs a \\\"command\\\""),
    (b"\xff\xfe\n", "not valid UTF-8"),
    (b"\n", "empty request"),
    (b'{"command": "frobnicate"}\n', "unknown command 'frobnicate'"),
    (b'{"command": "query loss >>> 2"}\n', "position"),
    (b'{"command": "query nosuchcolumn > 1"}\n', "unknown column 'nosuchcolumn'"),
    (b'{"command": "tag \\"unclosed --query loss > 1"}\n', ""),
])
def test_malformed_lines_keep_the_connection(experiment: Experiment, serve: Callable[..., CliServer],
                                             connect: Any, line: bytes, message: str) -> None:
    client = connect(serve(experiment).port)
    reply = client.send_raw(line)
    assert reply["ok"] is False and isinstance(reply["error"], str)
    if message:
        assert message.replace("\\\"", '"') in reply["error"]
    assert client.cmd("status")["ok"]  # the connection and the server are still fine


def test_oversized_line_is_refused_and_drained(experiment: Experiment, serve: Callable[..., CliServer],
                                               connect: Any) -> None:
    server = serve(experiment)
    client = connect(server.port)
    reply = client.send_raw(b'{"command": "query ' + b"x" * (3 * MAX_LINE_BYTES) + b'"}\n')
    assert reply == {"ok": False, "error": f"line too long (max {MAX_LINE_BYTES} bytes)"}
    assert client.cmd("status")["ok"]
    assert connect(server.port).cmd("status")["ok"]  # other clients unaffected


def test_a_client_vanishing_mid_line_does_not_hurt_the_server(experiment: Experiment,
                                                              serve: Callable[..., CliServer], connect: Any) -> None:
    server = serve(experiment)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    raw.sendall(b'{"command": "sta')
    raw.close()
    assert connect(server.port).cmd("status")["ok"]


# -- discovery file ------------------------------------------------------------------------------------


def test_discovery_file_written_and_removed_by_its_owner(experiment: Experiment, tmp_path: Path) -> None:
    path = tmp_path / "disc" / "cli.json"
    server = start_cli_server(experiment, discovery_file=path)
    info = read_discovery(path)
    assert info["port"] == server.port and info["pid"] == os.getpid()
    assert info["host"] == "127.0.0.1" and info["tls"] is False and info["auth"] is False
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    server.stop()
    assert not path.exists()


def test_discovery_file_of_another_process_is_left_alone(experiment: Experiment, tmp_path: Path) -> None:
    path = tmp_path / "cli.json"
    server = start_cli_server(experiment, discovery_file=path)
    info = read_discovery(path)
    write_discovery(path, {**info, "pid": info["pid"] + 1})  # another server took over the file
    server.stop()
    assert path.exists() and read_discovery(path)["pid"] == info["pid"] + 1
    assert not remove_discovery_if_owner(path)


def test_discovery_file_from_serve_kwarg(experiment: Experiment, tmp_path: Path) -> None:
    path = tmp_path / "custom.json"
    experiment.serve_options.update({"cli": True, "cli_discovery_file": str(path)})
    server = plugin.weightslab_serve(experiment, experiment.config)
    try:
        assert experiment.services["cli"] is server
        assert read_discovery(path)["port"] == server.port
    finally:
        server.stop()
    assert not path.exists()


def test_serve_hook_does_nothing_unless_asked(experiment: Experiment) -> None:
    experiment.serve_options["cli"] = False
    assert plugin.weightslab_serve(experiment, experiment.config) is None
    assert "cli" not in experiment.services


# -- ports and binding -------------------------------------------------------------------------------


class _FakeGrpc:
    def __init__(self, port: int) -> None:
        self.port = port

    def stop(self) -> None:
        pass


def test_port_clash_with_grpc_takes_the_next_free_port(tmp_path: Path, caplog: Any) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    exp = make_experiment(tmp_path / "run", base_environ(CLI_PORT=str(port)))
    exp.services["grpc"] = _FakeGrpc(port)  # the gRPC server holds the configured CLI_PORT
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("weightslab").addHandler(handler)
    try:
        server = start_cli_server(exp, discovery_file=tmp_path / "cli.json")
        try:
            assert server.port != port and port < server.port <= port + 100
            assert read_discovery(tmp_path / "cli.json")["port"] == server.port
            assert any(f"listens on {server.port}" in r for r in records)
            client = LineClient(server.port)
            assert client.cmd("status")["ok"]
            client.close()
        finally:
            server.stop()
    finally:
        logging.getLogger("weightslab").removeHandler(handler)
        holder.close()
        exp.services.pop("grpc", None)
        exp.shutdown()


def test_port_in_use_by_something_else_is_a_clear_error(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    exp = make_experiment(tmp_path / "run", base_environ(CLI_PORT=str(port)))
    try:
        with pytest.raises(CliServerError, match=f"CLI_PORT={port} is already in use"):
            start_cli_server(exp, discovery_file=False)
    finally:
        holder.close()
        exp.shutdown()


def test_non_loopback_bind_refused_without_protection(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "run", base_environ(CLI_HOST="0.0.0.0"))
    try:
        with pytest.raises(CliServerError, match="CLI_HOST='0.0.0.0' is not a loopback address"):
            start_cli_server(exp, discovery_file=False)
        assert "cli" not in exp.services
    finally:
        exp.shutdown()


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("")
    assert not is_loopback("192.168.1.10") and not is_loopback("10.0.0.1")


def test_stop_closes_connections_and_is_idempotent(experiment: Experiment, serve: Callable[..., CliServer],
                                                   connect: Any) -> None:
    server = serve(experiment)
    client = connect(server.port)
    server.stop()
    server.stop()
    assert client.closed()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
