"""Fixtures: in-process experiments with a few samples, CLI servers on 127.0.0.1, line clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_testutil import LineClient, make_experiment
from weightslab.experiment import Experiment
from weightslab_cli.server import CliServer, start_cli_server


@pytest.fixture
def experiment(tmp_path: Path) -> Iterator[Experiment]:
    exp = make_experiment(tmp_path / "run")
    yield exp
    exp.shutdown()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., CliServer]]:
    """``serve(experiment, discovery_file=...)`` starts a server that is stopped after the test."""
    servers: list[CliServer] = []

    def start(exp: Experiment, discovery_file: Path | None | bool = None) -> CliServer:
        path = tmp_path / "cli.json" if discovery_file is None else discovery_file
        server = start_cli_server(exp, discovery_file=path)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def connect() -> Iterator[Callable[..., LineClient]]:
    clients: list[LineClient] = []

    def open_client(port: int, **kw: Any) -> LineClient:
        client = LineClient(port, **kw)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        try:
            client.close()
        except OSError:
            pass
