"""CLI settings observed from outside: CLI_HOST/CLI_PORT decide where the server listens, and
AUDIT_LOG_FORMAT decides the audit file of CLI commands (the one file gRPC writes too)."""

from __future__ import annotations

import csv
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cli_testutil import LineClient, base_environ, make_experiment, read_audit
from weightslab.experiment import Experiment
from weightslab_cli import plugin
from weightslab_cli.discovery import read_discovery

OTHER_LOOPBACK = "127.0.0.2"  # Linux routes all of 127.0.0.0/8 to lo: a second local address
TOKEN = "cli-settings-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def greeting(host: str, port: int) -> dict[str, Any] | None:
    """The server's first line on ``host:port``; None when the connection is refused."""
    try:
        sock = socket.create_connection((host, port), timeout=10)
    except ConnectionRefusedError:
        return None
    with sock, sock.makefile("rb") as reader:
        data: dict[str, Any] = json.loads(reader.readline())
        return data


@pytest.fixture
def experiments(tmp_path: Path) -> Iterator[Callable[..., Experiment]]:
    made: list[Experiment] = []

    def make(environ: dict[str, str]) -> Experiment:
        exp = make_experiment(tmp_path / f"run{len(made)}", environ)
        made.append(exp)
        return exp

    yield make
    for exp in made:
        exp.shutdown()  # stops every service (the CLI server, the gRPC server) too


def serve_cli(exp: Experiment, discovery: Path | None = None) -> Any:
    """The plugin's serve hook, as ``wl.serve(serving_cli=True)`` runs it."""
    exp.serve_options.update({"cli": True, "cli_discovery_file": str(discovery) if discovery else False})
    server = plugin.weightslab_serve(exp, exp.config)
    assert exp.services["cli"] is server
    return server


# -- CLI_HOST / CLI_PORT ------------------------------------------------------------------------


def test_cli_host_and_port_decide_where_the_server_listens(experiments: Callable[..., Experiment],
                                                           tmp_path: Path) -> None:
    port = free_port()
    exp = experiments(base_environ(CLI_HOST=OTHER_LOOPBACK, CLI_PORT=str(port)))
    server = serve_cli(exp, tmp_path / "cli.json")
    assert server.port == port
    hello = greeting(OTHER_LOOPBACK, port)
    assert hello is not None and hello.get("ok") is not False
    assert greeting("127.0.0.1", port) is None  # bound to CLI_HOST only
    info = read_discovery(tmp_path / "cli.json")
    assert (info["host"], info["port"]) == (OTHER_LOOPBACK, port)  # what `weightslab cli` connects to


def test_cli_default_host_binds_every_interface(experiments: Callable[..., Experiment]) -> None:
    environ = base_environ(CLI_PORT="0", GRPC_AUTH_TOKEN=TOKEN)  # a token: a non-loopback bind is allowed
    del environ["CLI_HOST"]  # the default, 0.0.0.0
    exp = experiments(environ)
    server = serve_cli(exp)
    assert server.bind_host == "0.0.0.0"
    assert greeting("127.0.0.1", server.port) is not None
    assert greeting(OTHER_LOOPBACK, server.port) is not None


# -- AUDIT_LOG_FORMAT through the CLI server ------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "csv", "none"])
def test_audit_log_format_of_cli_commands(experiments: Callable[..., Experiment], fmt: str) -> None:
    exp = experiments(base_environ(AUDIT_LOG_FORMAT=fmt, CLI_PORT="0"))
    client = LineClient(serve_cli(exp).port)
    try:
        assert client.cmd("pause")["ok"] and client.cmd("tag suspicious 1 2 --split train")["ok"]
        assert client.cmd("resume")["ok"]
        assert client.cmd("status")["ok"]  # a read: never audited
    finally:
        client.close()
    root = exp.root_log_dir
    files = sorted(p.name for p in root.iterdir() if p.name.startswith("audit"))
    if fmt == "none":
        assert files == []
        return
    if fmt == "json":
        assert files == ["audit.jsonl"]
        records = read_audit(root)
    else:
        assert files == ["audit.csv"]
        text = (root / "audit.csv").read_text()
        assert text.count("ts,action,outcome") == 1
        records = [{**row, "caller": json.loads(row["caller"])} for row in csv.DictReader(text.splitlines())]
    assert [r["action"] for r in records] == ["pause", "edit_samples", "resume"]
    assert all(r["caller"]["transport"] == "cli" and r["outcome"] == "ok" for r in records)


def test_one_audit_file_for_cli_and_grpc(experiments: Callable[..., Experiment]) -> None:
    """AUDIT_LOG_FORMAT=csv with both servers of one experiment: one audit.csv, both transports."""
    from weightslab_grpc_server._generated import experiment_pb2 as pb
    from weightslab_grpc_server._generated import experiment_pb2_grpc as pb_grpc

    # a free port, not 0: weightslab-studio reads GRPC_BACKEND_PORT too and only accepts 1..65535
    exp = experiments(base_environ(AUDIT_LOG_FORMAT="csv", CLI_PORT="0", GRPC_BACKEND_HOST="127.0.0.1",
                                   GRPC_BACKEND_PORT=str(free_port())))
    exp.serve_options.update({"grpc": True, "cli": True, "cli_discovery_file": False})
    exp.pm.hook.weightslab_configure(config=exp.config)
    exp.pm.hook.weightslab_serve(experiment=exp, config=exp.config)
    client = LineClient(exp.services["cli"].port)
    try:
        assert client.cmd("pause")["ok"]
    finally:
        client.close()
    with grpc.insecure_channel(f"127.0.0.1:{exp.services['grpc'].port}",
                               options=[("grpc.enable_http_proxy", 0)]) as channel:
        pb_grpc.ExperimentServiceStub(channel).Resume(pb.ResumeRequest(), timeout=10)
    root = exp.root_log_dir
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("audit")) == ["audit.csv"]
    rows = list(csv.DictReader((root / "audit.csv").read_text().splitlines()))
    assert [(r["action"], json.loads(r["caller"])["transport"]) for r in rows] == [("pause", "cli"),
                                                                                  ("resume", "grpc")]
