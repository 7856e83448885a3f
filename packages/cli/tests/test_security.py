"""Hostile input on the CLI socket: a real server on 127.0.0.1, raw protocol clients.

Nothing a client sends may close the connection without a ``{"ok": false, "error": ...}``
reply, poison the experiment's state or stores, or escape the audit trail.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_testutil import base_environ, make_experiment, read_audit
from weightslab.experiment import Experiment
from weightslab_cli.server import MAX_AUTH_FAILURES, CliServer

TOKEN = "s3cret-token-for-the-cli-security-tests-0123"


@pytest.fixture
def token_experiment(tmp_path: Path) -> Iterator[Experiment]:
    exp = make_experiment(tmp_path / "run", base_environ(GRPC_AUTH_TOKEN=TOKEN))
    yield exp
    exp.shutdown()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    records: list[str] = []
    handler = logging.StreamHandler(io.StringIO())
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("weightslab")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.mark.parametrize("line", [
    b'{"command": "status", "id": ' + b"[" * 30_000 + b"]" * 30_000 + b"}\n",  # json recursion limit
    b'{"command": "status", "id": ' + b"[" * 700 + b"]" * 700 + b"}\n",  # parses, too deep to echo
    b'{"command": "status", "id": {"a": {"b": [1, 2]}}}\n',
], ids=["very-deep", "deep", "object-id"])
def test_nested_json_gets_an_error_reply(experiment: Experiment, serve: Callable[..., CliServer],
                                         connect: Any, line: bytes) -> None:
    client = connect(serve(experiment).port)
    reply = client.send_raw(line)
    assert reply["ok"] is False and "id" in reply["error"]
    assert client.cmd("status")["ok"]  # the connection survived


@pytest.mark.parametrize("line, field", [
    (b'{"command": "tag \\ud800x 1,2"}\n', "command"),
    (b'{"cmd": "tag", "args": ["\\udfffx", "1"]}\n', "args"),
    (b'{"cmd": "\\ud800"}\n', "cmd"),
    (b'{"command": "status", "id": "\\ud800"}\n', "id"),
])
def test_lone_surrogates_are_refused(experiment: Experiment, serve: Callable[..., CliServer], connect: Any,
                                     tmp_path: Path, line: bytes, field: str) -> None:
    client = connect(serve(experiment).port)
    reply = client.send_raw(line)
    assert reply["ok"] is False and field in reply["error"] and "surrogate" in reply["error"]
    assert client.cmd("status")["ok"]
    assert not any(name.startswith(("\ud800", "\udfff")) for name in experiment.table.tags)
    store = getattr(experiment, "store", None)
    if store is not None and callable(getattr(store, "flush", None)):
        store.flush()  # the store was not poisoned with text that cannot be encoded


def test_auth_with_a_lone_surrogate_is_an_error_reply(token_experiment: Experiment,
                                                      serve: Callable[..., CliServer], connect: Any) -> None:
    client = connect(serve(token_experiment).port)
    reply = client.send_raw(b'{"cmd": "auth", "args": ["\\ud800"]}\n')
    assert reply["ok"] is False
    assert client.cmd(f"auth {TOKEN}")["ok"]


def test_unauthenticated_commands_are_audited_and_capped(token_experiment: Experiment,
                                                         serve: Callable[..., CliServer], connect: Any,
                                                         tmp_path: Path) -> None:
    client = connect(serve(token_experiment).port)
    for _ in range(MAX_AUTH_FAILURES):
        reply = client.cmd("pause")
        assert reply == {"ok": False, "error": "authentication required: send 'auth <token>' first"}
    assert client.closed()  # probing without a token is not unlimited
    assert token_experiment.control.state.value == "running"
    # Rate-limited: the first failure at once, the other ones counted into one summary record.
    failures = [r for r in read_audit(tmp_path / "run") if r["action"] == "auth_failure"]
    assert len(failures) == 1 and failures[0]["params"]["failures"] == 1
    assert failures[0]["outcome"] == "denied" and failures[0]["params"]["method"] == "pause"
    assert failures[0]["caller"]["transport"] == "cli"
    token_experiment.services["cli"].stop()
    failures = [r for r in read_audit(tmp_path / "run") if r["action"] == "auth_failure"]
    assert [r["params"]["failures"] for r in failures] == [1, MAX_AUTH_FAILURES - 1]


def test_internal_errors_do_not_leak_details(experiment: Experiment, serve: Callable[..., CliServer],
                                             connect: Any, monkeypatch: pytest.MonkeyPatch,
                                             log_lines: list[str]) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:  # Experiment.status's signature
        raise RuntimeError("db at /srv/private/secret-path.h5 exploded")

    monkeypatch.setattr(experiment, "status", broken)
    client = connect(serve(experiment).port)
    reply = client.cmd("status")
    assert reply["ok"] is False and "internal error" in reply["error"] and "RuntimeError" in reply["error"]
    assert "secret-path" not in reply["error"]
    assert any("status" in line for line in log_lines)  # the details are in the server log
    assert client.cmd("help")["ok"]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_audit_record_with_unencodable_text_is_still_written(tmp_path: Path, fmt: str) -> None:
    """Whatever text reaches the audit log (a plugin's error message...), the record is appended."""
    from weightslab.audit import AuditLog

    audit = AuditLog(tmp_path, fmt)
    audit.record("edit_samples", params={"tag": "bad\ud800tag"}, outcome="error", error="boom \udfff")
    assert audit.failures == 0 and audit.records_written == 1
    assert audit.path is not None and "edit_samples" in audit.path.read_text(encoding="utf-8")


# -- a non-loopback bind needs authentication, not only encryption ----------------------------------


def _tls_env(pki: Any, **extra: str) -> dict[str, str]:
    env = base_environ(GRPC_TLS_ENABLED="1", GRPC_TLS_CERT_DIR=str(pki.directory), CLI_PORT="0", **extra)
    env["CLI_HOST"] = "0.0.0.0"
    return env


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A dev PKI without its token file: TLS, but no token at all (the token file would be one)."""
    from weightslab_auth.pki import create_dev_pki

    paths = create_dev_pki(tmp_path_factory.mktemp("pki"))
    paths.token.unlink()
    return paths


def _tls_client(host: str, port: int, pki: Any, *, cert: bool, source: str | None = None) -> dict[str, Any]:
    """The first reply of a TLS connection (with or without the Envoy client certificate)."""
    import json
    import socket
    import ssl

    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.check_hostname = False  # the dev certificate names 127.0.0.1/localhost, not every interface
    if cert:
        context.load_cert_chain(str(pki.envoy_client_cert), str(pki.envoy_client_key))
    raw = socket.create_connection((host, port), timeout=10,
                                   source_address=(source, 0) if source is not None else None)
    with context.wrap_socket(raw, server_hostname=host) as sock:
        reply: dict[str, Any] = json.loads(sock.makefile("rb").readline())
        return reply


def test_non_loopback_tls_without_token_requires_client_certificates(tmp_path: Path, pki: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from weightslab_cli import server as server_module
    from weightslab_cli.server import start_cli_server

    # Tests send traffic to loopback only: 127.0.0.2 stands in for "another machine" by making
    # the server's locality check (and only it) treat that address as remote.
    remote = "127.0.0.2"
    real_is_loopback = server_module.is_loopback
    monkeypatch.setattr(server_module, "is_loopback", lambda host: host != remote and real_is_loopback(host))
    exp = make_experiment(tmp_path / "run", _tls_env(pki))
    try:
        server = start_cli_server(exp, discovery_file=False)
        assert _tls_client(remote, server.port, pki, cert=True, source=remote)["greeting"] == "weightslab-cli"
        refused = _tls_client(remote, server.port, pki, cert=False, source=remote)
        assert refused["ok"] is False and "client certificate" in refused["error"]
        failures = [r for r in read_audit(tmp_path / "run") if r["action"] == "auth_failure"]
        assert failures and failures[-1]["caller"]["peer"].startswith(remote)
        # Without a token a loopback peer is not trusted either (another local user is one).
        local = _tls_client("127.0.0.1", server.port, pki, cert=False)
        assert local["ok"] is False and "client certificate" in local["error"]
    finally:
        exp.shutdown()


def test_non_loopback_tls_without_token_or_client_auth_is_refused(tmp_path: Path, pki: Any) -> None:
    from weightslab_cli.server import CliServerError, start_cli_server

    exp = make_experiment(tmp_path / "run", _tls_env(pki, GRPC_TLS_REQUIRE_CLIENT_AUTH="0"))
    try:
        with pytest.raises(CliServerError, match="CLI_HOST='0.0.0.0'.*GRPC_AUTH_TOKEN"):
            start_cli_server(exp, discovery_file=False)
        assert "cli" not in exp.services
    finally:
        exp.shutdown()


def test_cli_client_presents_a_client_certificate(tmp_path: Path, pki: Any) -> None:
    """`weightslab cli --cert/--key` reaches a server that requires client certificates."""
    from weightslab_cli.client import CliClient, ClientError
    from weightslab_cli.server import start_cli_server

    exp = make_experiment(tmp_path / "run", _tls_env(pki))
    try:
        server = start_cli_server(exp, discovery_file=False)
        with CliClient("127.0.0.1", server.port, tls=True, ca_file=pki.ca_cert, cert_file=pki.envoy_client_cert,
                       key_file=pki.envoy_client_key) as client:
            assert client.request("status")["ok"] is True
        with pytest.raises((ClientError, OSError)):
            with CliClient("127.0.0.1", server.port, tls=True, ca_file=pki.ca_cert) as client:
                client.request("status")
    finally:
        exp.shutdown()
