"""Several live runs at once (issue 20, item 8): two real processes, each with its CLI server on
127.0.0.1 and its own discovery entry under a temporary HOME. Without a terminal `weightslab cli`
fails listing them and how to choose; on a terminal (a real pseudo-terminal) it asks, and the
answer picks the run the command talks to; `--pid` picks one without asking."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_testutil import base_environ, empty_env_file
from weightslab_cli.discovery import live_entries

TIMEOUT = max(20.0, float(os.environ.get("WL_TEST_TIMEOUT", "30") or 30) - 5)
TESTS = Path(__file__).resolve().parent

# One run: an experiment with a few samples and its CLI server (default discovery entry:
# ~/.weightslab/cli/<pid>.json), serving until the test closes its stdin.
RUN = """
import sys
from pathlib import Path
from cli_testutil import make_experiment
from weightslab_cli.server import start_cli_server
exp = make_experiment(Path(sys.argv[1]))
server = start_cli_server(exp)
sys.stdin.read()
server.stop()
exp.shutdown()
"""


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GRPC_", "CLI_", "WEIGHTSLAB_", "WL_", "AUDIT_"))}
    env.update(base_environ(HOME=str(home), WEIGHTSLAB_ENV_FILE=str(empty_env_file())))
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def weightslab_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "weightslab_cli.main", "cli", *args]


class Runs:
    """Two live runs, ``alpha`` started before ``beta`` (the order `weightslab cli` lists them)."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.folder = self.home / ".weightslab" / "cli"
        self.procs: dict[str, subprocess.Popen[str]] = {}
        for name in ("alpha", "beta"):
            log = (tmp_path / f"{name}.log").open("w")
            self.procs[name] = subprocess.Popen([sys.executable, "-c", RUN, str(tmp_path / name / "run")],
                                                env=env_for(self.home), stdin=subprocess.PIPE, stdout=log,
                                                stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
            log.close()
            wait_for(lambda: self._published(tmp_path), f"run {name}'s discovery entry")
        self.entries = {str(info["experiment"]): info for _, info in live_entries(self.folder)}
        assert set(self.entries) == {"alpha", "beta"}, self.entries

    def _published(self, tmp_path: Path) -> bool:
        """Every run started so far is alive and has its entry (a dead run fails with its log)."""
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"run {name} exited: {(tmp_path / f'{name}.log').read_text()[-3000:]}"
        return len(live_entries(self.folder)) == len(self.procs)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.stdin is not None:
                proc.stdin.close()  # the run stops its server and exits
        for proc in self.procs.values():
            try:
                proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Runs]:
    live = Runs(tmp_path)
    try:
        yield live
    finally:
        live.close()


def test_without_a_terminal_the_client_lists_the_runs_and_how_to_choose(runs: Runs) -> None:
    done = subprocess.run(weightslab_cli("--json", "status"), env=env_for(runs.home), capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL, cwd=runs.home)
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    err = done.stderr
    assert "2 runs serve a CLI server" in err and "Traceback" not in err
    for flag in ("--pid PID", "--discovery-file PATH", "--port PORT"):
        assert flag in err, err
    for number, name in ((1, "alpha"), (2, "beta")):  # oldest first, each with its pid, port and start
        info = runs.entries[name]
        line = next(line for line in err.splitlines() if line.strip().startswith(f"{number}. "))
        assert (f"pid {info['pid']}" in line and f"'{name}'" in line and f":{info['port']} " in line
                and str(info["started_at"]) in line), line


def test_pid_picks_a_run_without_asking(runs: Runs) -> None:
    env = env_for(runs.home)
    for name in ("alpha", "beta"):
        done = subprocess.run(weightslab_cli("--pid", str(runs.entries[name]["pid"]), "--json", "status"), env=env,
                              capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"]["name"] == name
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          timeout=TIMEOUT)
    missing = subprocess.run(weightslab_cli("--pid", gone.stdout.strip(), "status"), env=env, capture_output=True,
                             text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert missing.returncode == 1 and f"--pid {gone.stdout.strip()}: no live run" in missing.stderr
    assert str(runs.entries["alpha"]["pid"]) in missing.stderr and str(runs.entries["beta"]["pid"]) in missing.stderr
    both = subprocess.run(weightslab_cli("--pid", "1", "--port", "1", "status"), env=env, capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert both.returncode == 2 and "--pid" in both.stderr
    # `weightslab export labels` finds its run the same way
    out = runs.home / "labels.json"
    exported = subprocess.run([sys.executable, "-m", "weightslab_cli.main", "export", "labels", "--out", str(out),
                               "--pid", str(runs.entries["beta"]["pid"])], env=env, capture_output=True, text=True,
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert exported.returncode == 0 and out.is_file(), exported.stderr
    ambiguous = subprocess.run([sys.executable, "-m", "weightslab_cli.main", "export", "labels", "--out", str(out)],
                               env=env, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert ambiguous.returncode == 1 and "2 runs serve a CLI server" in ambiguous.stderr


class Terminal:
    """A child process on a real pseudo-terminal: read what it prints, type answers."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        self.seen = ""

    def read_until(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + TIMEOUT
        while (found := re.search(pattern, self.seen)) is None:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {pattern!r}; the terminal shows:\n{self.seen}"
            if not self._read(left):
                raise AssertionError(f"the terminal closed before {pattern!r}; it shows:\n{self.seen}")
        return found

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.seen += data.decode("utf-8", "replace").replace("\r\n", "\n")
        return bool(data)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self) -> int:
        deadline = time.monotonic() + TIMEOUT
        while self._read(max(deadline - time.monotonic(), 0.01)) and time.monotonic() < deadline:
            pass
        return self.proc.wait(TIMEOUT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def test_on_a_terminal_the_client_asks_and_the_answer_picks_the_run(runs: Runs) -> None:
    term = Terminal(weightslab_cli("--json", "status"), env_for(runs.home), runs.home)
    try:
        term.read_until(r"which one \(1-2\)")
        listing = term.seen
        assert "2 runs serve a CLI server" in listing
        for number, name in ((1, "alpha"), (2, "beta")):
            info = runs.entries[name]
            assert re.search(rf"{number}\. pid {info['pid']} experiment '{name}' on 127\.0\.0\.1:{info['port']} "
                             rf"\(started {re.escape(str(info['started_at']))}", listing), listing
        term.type("3\n")  # out of range: asked again
        term.read_until(r"3 is not in the range[^\n]*\n[^\n]*which one \(1-2\)")
        term.type("2\n")
        assert term.finish() == 0, term.seen
        reply = json.loads(term.seen[term.seen.index("{", term.seen.rindex("which one")):])
        assert reply["ok"] and reply["status"]["name"] == "beta"
    finally:
        term.close()
