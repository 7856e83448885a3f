"""Repository-wide pytest settings: every test obeys WL_TEST_TIMEOUT (default 30 s), binds no
default port (the port guard below), runs with a HOME of its own (never the developer's
~/certs, ~/.weightslab or ~/.env), and hypothesis runs derandomised in CI.

Self-contained on purpose: tests copy this file into throw-away suites to check it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Ports a developer's running demo/studio holds (gRPC and CLI 50051, 50052, Envoy 8080/9901,
# Vite 5173): a test binding one fails beside it, so no test may bind one (use port 0).
DEFAULT_PORTS = frozenset({50051, 50052, 8080, 9901, 5173})


def _test_timeout() -> float:
    try:  # through the resolver, so a .env value counts too
        from weightslab.config import ConfigError, resolve
        from weightslab.config.core_settings import TestingSettings

        try:
            return float(resolve([TestingSettings])["testing"].test_timeout)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    except ImportError:
        pass
    raw = os.environ.get("WL_TEST_TIMEOUT", "30").strip()
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(f"WL_TEST_TIMEOUT={raw!r}: expected a positive number of seconds") from None
    if value <= 0:
        raise pytest.UsageError(f"WL_TEST_TIMEOUT={raw!r}: expected a positive number of seconds")
    return value


def pytest_configure(config: pytest.Config) -> None:
    global _forbidden
    _forbidden = DEFAULT_PORTS | frozenset(config.getoption("forbid_port", None) or ())
    _guard_socket_bind()
    # pytest-timeout, signal method: a hung test fails with "Timeout" and the run goes on with the
    # next test (SIGALRM interrupts blocking calls in the main thread).
    if getattr(config.option, "timeout", None) in (None, 0):
        config.option.timeout = _test_timeout()
    if getattr(config.option, "timeout_method", None) is None:
        config.option.timeout_method = "signal"


# --- hypothesis: reproducible in CI, exploring locally, no .hypothesis/ in the working tree ------

def _hypothesis_profiles() -> None:
    try:
        from hypothesis import settings
        from hypothesis.configuration import set_hypothesis_home_dir
        from hypothesis.database import DirectoryBasedExampleDatabase
    except ImportError:
        return
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "weightslab-hypothesis"
    set_hypothesis_home_dir(cache)  # its caches (constants, unicode data) too, not ./.hypothesis
    # CI: the same examples on every run, so an unrelated change cannot surface a new failure.
    settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
    settings.register_profile("dev", database=DirectoryBasedExampleDatabase(str(cache / "examples")))
    settings.load_profile("ci" if os.environ.get("CI") else "dev")


_hypothesis_profiles()


# --- HOME: the tests' own, empty ---------------------------------------------------------------
# Defaults live under HOME (GRPC_TLS_CERT_DIR ~/certs and its token file, ~/.weightslab discovery
# and demo runs): a developer who ran `weightslab demo` or `certs init` must not change what a test
# sees. Set before any weightslab import reads a default; child processes inherit it.
def _isolated_home() -> None:
    if Path(os.environ.get("HOME", "")).name.startswith("wl-test-home-"):
        return  # already isolated (a suite run in-process or a child of this one): defaults stay as expanded
    home = tempfile.mkdtemp(prefix="wl-test-home-")
    os.environ["HOME"] = home
    atexit.register(shutil.rmtree, home, True)


_isolated_home()


# --- the port guard --------------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--forbid-port", action="append", type=int, default=[], metavar="PORT",
                     help="also treat PORT as a default port no test may bind (the guard's own tests)")


_forbidden: frozenset[int] = DEFAULT_PORTS
_violations: list[str] = []


def _bound_port(address: Any) -> int | None:
    if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
        return address[1]
    return None


def _guard_socket_bind() -> None:
    original: Callable[..., Any] = socket.socket.bind
    if getattr(original, "_wl_port_guard", False):
        return

    def bind(self: socket.socket, address: Any) -> None:
        port = _bound_port(address)
        if port in _forbidden:
            _violations.append(f"socket.bind({address!r})")
            raise OSError(f"test bound default port {port}: use port 0 (the conftest.py port guard)")
        original(self, address)

    bind._wl_port_guard = True  # type: ignore[attr-defined]
    socket.socket.bind = bind  # type: ignore[method-assign]


def _guard_grpc() -> None:
    """gRPC binds in C, past ``socket.bind``: check the address given to ``add_*_port``."""
    server_module = sys.modules.get("grpc._server")
    server_class = getattr(server_module, "_Server", None)
    if server_class is None or getattr(server_class, "_wl_port_guard", False):
        return
    for name in ("add_insecure_port", "add_secure_port"):
        original = getattr(server_class, name)

        def add_port(self: Any, address: str, *args: Any, _original: Any = original, _name: str = name) -> Any:
            port = address.rsplit(":", 1)[-1]
            if port.isdigit() and int(port) in _forbidden:
                _violations.append(f"grpc {_name}({address!r})")
                raise RuntimeError(f"test bound default port {port}: use port 0 (the conftest.py port guard)")
            return _original(self, address, *args)

        setattr(server_class, name, add_port)
    server_class._wl_port_guard = True


def _listening_inodes(ports: frozenset[int]) -> dict[str, int]:
    """inode -> port of the TCP sockets listening on ``ports`` (Linux; {} elsewhere)."""
    found: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":  # LISTEN
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if port in ports:
                    found[fields[9]] = port
    return found


def _process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                todo += [int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
            except OSError:
                pass
    return tree


def listeners_on(ports: frozenset[int], pid: int | None = None) -> list[tuple[int, int]]:
    """``(pid, port)`` for each socket of ``pid`` (default: this process) or its descendants
    listening on one of ``ports``. Cheap when nothing listens on them at all."""
    inodes = _listening_inodes(ports)
    if not inodes:
        return []
    found = []
    for member in _process_tree(os.getpid() if pid is None else pid):
        try:
            fds = os.listdir(f"/proc/{member}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{member}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                found.append((member, inodes[target[8:-1]]))
    return found


def _check_ports(scan: bool) -> None:
    problems = list(_violations)
    del _violations[:]
    if scan:
        problems += [f"pid {pid} listens on default port {port}"
                     for pid, port in sorted(set(listeners_on(_forbidden)))]
    if problems:
        pytest.fail("a test must not bind a default port (use port 0 or a free port): " + "; ".join(problems),
                    pytrace=False)


# Checked after each phase: a bind in this process (Python sockets, gRPC) fails the phase that did
# it; after the test body, a listener of this process or of a process it started fails the test
# (before teardown, so a server a fixture stops at teardown is still seen).
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _guard_grpc()
    del _violations[:]
    result = yield
    _check_ports(scan=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    _guard_grpc()
    result = yield
    _check_ports(scan=True)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    result = yield
    _check_ports(scan=False)
    return result
