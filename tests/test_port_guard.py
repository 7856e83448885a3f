"""The port guard of the repository's conftest.py: a test that binds a default port fails.

Like test_wl_test_timeout.py, each case runs pytest in a subprocess on a throw-away folder holding
a copy of the real ``conftest.py``. The inner tests bind a free port that the outer test declares
forbidden with ``--forbid-port`` (never a real default port: a demo may be listening there).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

INNER = textwrap.dedent('''
    import os, socket, subprocess, sys
    import pytest

    PORT = int(os.environ["GUARD_PORT"])
    LISTEN = ("import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', %d)); s.listen();"
              "print('ready', flush=True); sys.stdin.read()")

    def test_python_socket():
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", PORT))
            except OSError:
                pass  # code that swallows the error is still caught

    def test_port_zero_is_fine():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()

    def test_grpc_server():
        grpc = pytest.importorskip("grpc")
        from concurrent import futures
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        try:
            server.add_insecure_port(f"127.0.0.1:{PORT}")
        except RuntimeError:
            pass
        server.stop(None)

    @pytest.fixture
    def child():
        proc = subprocess.Popen([sys.executable, "-c", LISTEN % PORT], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        yield proc
        proc.stdin.close()
        proc.wait(10)

    def test_child_process(child):
        assert child.poll() is None  # listening until the fixture stops it, after the check
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_inner(tmp_path: Path, *selection: str) -> subprocess.CompletedProcess[str]:
    folder = tmp_path / "suite"
    folder.mkdir()
    shutil.copy(REPO / "conftest.py", folder / "conftest.py")
    (folder / "test_binds.py").write_text(INNER)
    (tmp_path / "empty.env").write_text("")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "WL_", "WEIGHTSLAB_"))}
    env.update({"GUARD_PORT": str(port), "WEIGHTSLAB_ENV_FILE": str(tmp_path / "empty.env"), "CI": "1"})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--forbid-port={port}", "-rA",
         *[f"test_binds.py::{name}" for name in selection]],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["test_python_socket", "test_grpc_server", "test_child_process"])
def test_a_test_binding_a_default_port_fails(tmp_path: Path, name: str) -> None:
    if name == "test_grpc_server":
        pytest.importorskip("grpc")
    if name == "test_child_process" and not Path("/proc/self/fd").is_dir():
        pytest.skip("the listener scan reads /proc (Linux)")
    done = run_inner(tmp_path, name)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"FAILED test_binds.py::{name}" in output, output
    assert "a test must not bind a default port" in output, output


def test_port_zero_passes(tmp_path: Path) -> None:
    done = run_inner(tmp_path, "test_port_zero_is_fine")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_default_port_of_the_installed_plugins_is_guarded(tmp_path: Path) -> None:
    """A new ``*_PORT`` setting with a default must join the guard's list."""
    import importlib.util

    from weightslab.plugins import create_plugin_manager
    from weightslab.settings import load_config

    spec = importlib.util.spec_from_file_location("wl_root_conftest", REPO / "conftest.py")
    assert spec is not None and spec.loader is not None
    root_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root_conftest)
    shown = load_config(environ={}, cwd=tmp_path, pm=create_plugin_manager(environ={}), validate=False).as_json()
    defaults = {entry["value"] for name, entry in _variables(shown) if name.endswith("_PORT")}
    defaults.discard(0)
    assert defaults, shown  # the CLI and gRPC ports at least
    assert defaults <= root_conftest.DEFAULT_PORTS


def _variables(shown: dict) -> list[tuple[str, dict]]:
    found = []
    for name, entry in shown.items():
        if isinstance(entry, dict) and "value" in entry:
            found.append((name, entry))
        elif isinstance(entry, dict):
            found += _variables(entry)
    return found
