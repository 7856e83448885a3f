"""`weightslab demo` in a subprocess (isolated HOME: its own PKI and discovery file) and
`weightslab cli` against it: pause/resume, tag and discard by query, audit, JSON report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_testutil import empty_env_file
from weightslab_cli.client import CliClient, connect, resolve_target
from weightslab_cli.discovery import read_discovery

pytest.importorskip("torch")
pytest.importorskip("sklearn")

# How long a demo may take to start serving: most of WL_TEST_TIMEOUT (a loaded machine is slow).
STARTUP = max(25.0, float(os.environ.get("WL_TEST_TIMEOUT", "30") or 30) - 5)
REQUIRED_KEYS = {"steps", "samples", "noisy_injected", "auroc", "precision_at_k", "train_seconds", "root_log_dir"}


def demo_env(home: Path) -> dict[str, str]:
    """The test's environment minus every WeightsLab/gRPC setting, with its own HOME."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GRPC_", "CLI_", "WEIGHTSLAB_", "WL_", "AUDIT_", "ENVOY_", "VITE_"))}
    env.update({"HOME": str(home), "PYTHONUNBUFFERED": "1", "WEIGHTSLAB_LOG_LEVEL": "INFO"})
    return env


def weightslab(*args: str) -> list[str]:
    return [sys.executable, "-m", "weightslab_cli.main", *args]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, proc: subprocess.Popen[Any] | None = None,
             interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns a truthy value (fails early if ``proc`` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the demo exited ({proc.returncode}) while waiting for {what}")
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class LiveDemo:
    def __init__(self, tmp: Path) -> None:
        self.home = tmp / "home"
        self.home.mkdir()
        self.root = tmp / "run"
        self.stderr_path = tmp / "demo.stderr"
        self.stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            weightslab("demo", "--headless", "--epochs", "1000", "--grpc-port", "0", "--cli-port", "0",
                       "--root-log-dir", str(self.root)),
            env=demo_env(self.home), stdout=subprocess.DEVNULL, stderr=self.stderr, cwd=tmp)
        self.discovery = self.home / ".weightslab" / "cli" / f"{self.proc.pid}.json"  # one entry per process

    def info(self) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            try:
                return read_discovery(self.discovery)
            except (OSError, ValueError):
                return None

        try:
            return wait_for(ready, STARTUP, "the discovery file", self.proc)  # type: ignore[no-any-return]
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.stderr_path.read_text(errors='replace')[-3000:]}") from None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.stderr.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    demo = LiveDemo(tmp_path_factory.mktemp("live"))
    yield demo
    demo.stop()


@pytest.fixture
def cli(live: LiveDemo, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliClient]:
    """A client found the way `weightslab cli` finds it: discovery file, its CA and token file."""
    for name in ("GRPC_AUTH_TOKEN", "GRPC_AUTH_TOKENS", "GRPC_TLS_CA_FILE", "CLI_HOST", "CLI_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEIGHTSLAB_ENV_FILE", str(empty_env_file()))
    live.info()
    client = connect(resolve_target(None, None, live.discovery, None), timeout=20)
    yield client
    client.close()


def test_discovery_file_describes_a_protected_server(live: LiveDemo) -> None:
    info = live.info()
    assert info["pid"] == live.proc.pid and info["host"] == "127.0.0.1"
    assert info["tls"] is True and info["auth"] is True
    assert Path(info["ca_file"]).parent == live.home / "certs"
    assert (live.home / "certs" / "backend-server.crt").is_file()  # dev PKI created in the isolated HOME


def test_token_is_required(live: LiveDemo) -> None:
    info = live.info()
    with CliClient(info["host"], info["port"], tls=True, ca_file=Path(info["ca_file"])) as anonymous:
        assert anonymous.authenticated is False
        assert anonymous.request("status") == {"ok": False, "id": 1,
                                               "error": "authentication required: send 'auth <token>' first"}
        assert anonymous.request("auth not-the-token") == {"ok": False, "id": 2, "error": "invalid token"}


def test_pause_status_resume(cli: CliClient) -> None:
    assert cli.authenticated
    assert cli.request("pause")["state"] == "paused"
    status = cli.request("status")["status"]
    assert status["state"] == "paused"
    # the loop stops at the next step boundary, then the step count no longer moves
    stopped = wait_for(lambda: cli.request("status")["status"]["waiting"], 20, "the loop to block")
    assert stopped
    step = cli.request("status")["status"]["step"]
    assert cli.request("status")["status"]["step"] == step
    assert cli.request("resume")["state"] == "running"
    wait_for(lambda: cli.request("status")["status"]["step"] > step, 20, "training to go on")
    assert cli.request("status")["status"]["state"] == "running"


def test_tag_and_discard_by_query(cli: CliClient, live: LiveDemo) -> None:
    query = 'split == "train" and label == 3'
    assert cli.request("pause")["ok"]
    tagged = cli.request(["tag", "threes", "--query", query])
    assert tagged["ok"] and tagged["matched"] > 50 and tagged["changed"] == tagged["matched"]
    discarded = cli.request("discard --query has:threes")
    assert discarded["ok"] and discarded["matched"] == tagged["matched"]
    assert cli.request("query has:threes and discarded")["total"] == tagged["matched"]
    assert cli.request(f"query {query} and not discarded")["total"] == 0
    assert cli.request("status")["status"]["discarded"] == tagged["matched"]
    assert cli.request("resume")["ok"]
    audit = [json.loads(line) for line in (live.root / "audit.jsonl").read_text().splitlines()]
    edits = [r for r in audit if r["caller"].get("transport") == "cli" and r["action"] == "edit_samples"]
    tag = next(r for r in edits if r["params"]["action"] == "tag")
    assert tag["outcome"] == "ok" and tag["params"]["query"] == query and tag["params"]["tag"] == "threes"
    assert tag["result"]["changed"] == tagged["matched"] and tag["caller"]["token_fingerprint"]
    discard = next(r for r in edits if r["params"]["action"] == "discard")
    assert discard["params"]["query"] == "has:threes" and discard["result"]["matched"] == tagged["matched"]
    token = (live.home / "certs" / ".grpc_auth_token").read_text().strip()
    assert token not in (live.root / "audit.jsonl").read_text()


def test_evaluation_pass(cli: CliClient) -> None:
    started = cli.request("eval val --steps 2")
    assert started["ok"], started
    final = wait_for(lambda: (lambda s: s if s["state"] not in ("running", "idle") else None)(
        cli.request("eval_status")["evaluation"]), 20, "the evaluation pass to end")
    assert final["state"] == "done" and final["split"] == "val" and final["batches_done"] == 2
    assert "unknown split" in cli.request("eval nope")["error"]


def test_console_script_one_shot(live: LiveDemo) -> None:
    """`weightslab cli --json status` finds the server from ~/.weightslab/cli/<pid>.json and the token file."""
    live.info()
    out = subprocess.run(weightslab("cli", "--json", "status"), env=demo_env(live.home), capture_output=True,
                         timeout=25, text=True, cwd=live.home)
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply["ok"] and reply["status"]["samples"] == 1797
    bad = subprocess.run(weightslab("cli", "frobnicate"), env=demo_env(live.home), capture_output=True,
                         timeout=25, text=True, cwd=live.home)
    assert bad.returncode == 1 and "unknown command" in bad.stderr and bad.stdout == ""  # errors on stderr


@pytest.mark.parametrize("parent_sigint", ["default", "ignored"])
def test_ctrl_c_stops_and_removes_the_discovery_file(tmp_path: Path, parent_sigint: str) -> None:
    """Its own demo (stopping the shared one would break the tests after it). "ignored": started
    the way a background job starts it, with SIGINT ignored and so inherited ignored."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if parent_sigint == "ignored" else None
    try:
        demo = LiveDemo(tmp_path)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    try:
        demo.info()
        assert demo.discovery.exists()
        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(20) == 130  # documented in the README: 130 after Ctrl+C
        assert not demo.discovery.exists()
    finally:
        demo.stop()


def test_headless_json_report(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    home = tmp_path / "home"
    home.mkdir()
    out = subprocess.run(
        weightslab("demo", "--headless", "--exit-when-done", "--json", "--epochs", "2", "--grpc-port", "0",
                   "--cli-port", "0", "--root-log-dir", str(tmp_path / "run")),
        env=demo_env(home), capture_output=True, text=True, cwd=tmp_path,
        timeout=max(28.0, float(request.config.option.timeout or 30) - 2))  # within WL_TEST_TIMEOUT, however slow the machine
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, out.stdout  # exactly one JSON object on stdout; logs went to stderr
    report = json.loads(lines[0])
    assert REQUIRED_KEYS <= set(report)
    assert 0.0 <= report["auroc"] <= 1.0 and 0.0 <= report["precision_at_k"] <= 1.0
    assert report["samples"] == 1438 and report["noisy_injected"] == 144 and report["steps"] == 90
    assert report["root_log_dir"] == str(tmp_path / "run")
    assert "experiment" in out.stderr  # the logs
    assert not list((home / ".weightslab").glob("cli/*.json"))
