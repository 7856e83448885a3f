"""`weightslab demo` starts the Studio beside its gRPC server (URL printed, reachable, stopped
with the demo), and says exactly why when the Studio cannot start."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from studio_testutil import alive, children_of, free_port, wait_for
from weightslab_studio.envoy_binary import ENVOY_BINARY_VARIABLE

pytest.importorskip("torch")
pytest.importorskip("sklearn")


def demo_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GRPC_", "CLI_", "WEIGHTSLAB_", "WL_", "AUDIT_", "ENVOY_", "VITE_"))}
    env.update({"HOME": str(home), "PYTHONUNBUFFERED": "1", "WEIGHTSLAB_LOG_LEVEL": "WARNING",
                "ENVOY_PORT": str(free_port()), "ENVOY_ADMIN_PORT": str(free_port()), "COLUMNS": "300"})
    env.update(extra)
    return env


def demo(*args: str) -> list[str]:
    return [sys.executable, "-m", "weightslab_cli.main", "demo", "--grpc-port", "0", "--cli-port", "0", *args]


def test_the_demo_says_exactly_why_the_studio_did_not_start(tmp_path: Path) -> None:
    env = demo_env(tmp_path, **{ENVOY_BINARY_VARIABLE: str(tmp_path / "no-envoy")})
    result = subprocess.run(demo("--epochs", "1", "--exit-when-done", "--json", "--root-log-dir",
                                 str(tmp_path / "run")), env=env, capture_output=True, text=True, timeout=240,
                            cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["studio_url"] is None
    assert summary["studio_problem"] == (f"{ENVOY_BINARY_VARIABLE}={str(tmp_path / 'no-envoy')!r}: not an "
                                         "executable file; expected the path of an envoy binary")
    assert "Studio not started: " + ENVOY_BINARY_VARIABLE in result.stderr
    assert "not installed" not in result.stderr


def test_headless_starts_no_studio(tmp_path: Path) -> None:
    result = subprocess.run(demo("--headless", "--epochs", "1", "--exit-when-done", "--json", "--root-log-dir",
                                 str(tmp_path / "run")), env=demo_env(tmp_path), capture_output=True, text=True,
                            timeout=240, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert "studio_url" not in summary and "Studio" not in result.stderr


def test_the_demo_starts_the_studio_and_stops_it_on_ctrl_c(tmp_path: Path, built_ui: Path) -> None:
    env = demo_env(tmp_path)
    log_path = tmp_path / "demo.out"
    with log_path.open("wb") as log:
        process = subprocess.Popen(demo("--epochs", "1000", "--root-log-dir", str(tmp_path / "run")), env=env,
                                   stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, stdin=subprocess.DEVNULL,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        pattern = re.compile(r"Studio: (https://localhost:(\d+)/#token=(\S+))")
        match = wait_for(lambda: pattern.search(log_path.read_text(errors="replace")) or process.poll() is not None,
                         120, "the Studio URL")
        assert match is not True and match, log_path.read_text(errors="replace")[-3000:]
        assert int(match.group(2)) == int(env["ENVOY_PORT"])
        token = (tmp_path / "certs" / ".grpc_auth_token").read_text().strip()
        assert match.group(3) == token
        context = ssl.create_default_context(cafile=str(tmp_path / "certs" / "ca.crt"))
        with urllib.request.urlopen(f"https://localhost:{env['ENVOY_PORT']}/config.js", context=context,
                                    timeout=10) as response:
            assert response.headers["Cache-Control"] == "no-store"
            assert token.encode() not in response.read()
        envoys = children_of(process.pid)
        envoys = [pid for pid in envoys if "envoy" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]
        assert envoys
        process.send_signal(signal.SIGINT)
        process.wait(60)
        wait_for(lambda: not any(alive(pid) for pid in envoys), 15, "Envoy to stop with the demo")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
