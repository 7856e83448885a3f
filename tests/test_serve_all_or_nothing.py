"""``wl.serve(serving_grpc=True, serving_cli=True)`` with the real plugins: when one server cannot
bind its port, the call raises and nothing it started keeps running (no half-served process)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("weightslab_grpc_server")
pytest.importorskip("weightslab_cli")
if not Path("/proc/self/fd").is_dir():
    pytest.skip("the listener check reads /proc (Linux)", allow_module_level=True)


def listening_ports() -> set[int]:
    """Ports this process listens on (TCP, IPv4 and IPv6), from /proc."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in mine:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port held by someone else (here: a listening socket of the test)."""
    with socket.create_server(("127.0.0.1", 0)) as held:
        yield held.getsockname()[1]


@pytest.fixture
def sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import weightslab as wl
    from weightslab.sdk import reset_experiment

    reset_experiment()
    (tmp_path / "empty.env").write_text("")
    for name in list(os.environ):
        if name.startswith(("GRPC_", "CLI_", "WEIGHTSLAB_", "AUDIT_")):
            monkeypatch.delenv(name)
    for name, value in {"HOME": str(tmp_path / "home"), "WEIGHTSLAB_ENV_FILE": str(tmp_path / "empty.env"),
                        "WEIGHTSLAB_ROOT_LOG_DIR": str(tmp_path / "root"), "GRPC_BACKEND_HOST": "127.0.0.1",
                        "GRPC_BACKEND_PORT": "0", "CLI_HOST": "127.0.0.1", "CLI_PORT": "0",
                        "GRPC_TLS_ENABLED": "0", "GRPC_AUTH_TOKEN": "serve-test-token-0123456789",
                        "WEIGHTSLAB_LOG_LEVEL": "WARNING"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    yield wl
    reset_experiment()


@pytest.mark.parametrize("busy", ["CLI_PORT", "GRPC_BACKEND_PORT"])
def test_a_port_in_use_stops_everything_the_call_started(sdk: Any, busy_port: int, busy: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    before = listening_ports()
    assert busy_port in before
    monkeypatch.setenv(busy, str(busy_port))
    with pytest.raises(Exception, match=str(busy_port)):  # the bind error names the port
        sdk.serve(serving_grpc=True, serving_cli=True)
    experiment = sdk.get_experiment()
    assert not {"grpc", "cli", "watchdog", "previews"} & set(experiment.services), experiment.services
    assert listening_ports() == before  # the other server was stopped, not left half-serving

    monkeypatch.setenv(busy, "0")  # the same process can serve once the port problem is fixed
    services = sdk.serve(serving_grpc=True, serving_cli=True)
    assert services["grpc"].running and len(listening_ports() - before) == 2, sys.platform
