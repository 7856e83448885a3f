"""The documentation's examples, run as written, so they cannot drift again (issue 20).

The root README's Python snippet runs as a script (a prelude defines its ``MyNet`` and a small
``train_set``) after `weightslab certs init`, with an isolated HOME, 127.0.0.1 and free ports;
then every `weightslab cli ...` command of the root README's text and of the CLI README's
example block runs through bash against it, exactly as printed, and must succeed. The core
README's query examples must parse.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wl_testutil import REPO

pytest.importorskip("torch")
pytest.importorskip("weightslab_cli")
pytest.importorskip("weightslab_grpc_server")
pytest.importorskip("weightslab_auth")

STARTUP = max(25.0, float(os.environ.get("WL_TEST_TIMEOUT", "30") or 30) - 5)
ROOT_README = (REPO / "README.md").read_text(encoding="utf-8")
CLI_README = (REPO / "packages" / "cli" / "README.md").read_text(encoding="utf-8")
CORE_README = (REPO / "packages" / "core" / "README.md").read_text(encoding="utf-8")

PRELUDE = '''\
import torch

torch.manual_seed(0)


class MyNet(torch.nn.Module):  # the README's model: any torch module
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.layer(x)


train_set = torch.utils.data.TensorDataset(torch.randn(96, 8), torch.randint(0, 3, (96,)))  # 3 batches of 32
'''
STEPS = 30  # 10 epochs x 3 batches


def python_snippet() -> str:
    match = re.search(r"```python\n(import torch, weightslab as wl\n.*?)```", ROOT_README, re.S)
    assert match, "the root README's Python snippet is gone"
    return match.group(1)


def _strip_comment(line: str) -> str:
    return re.sub(r"\s+#\s.*$", "", line).strip()


def cli_commands() -> list[str]:
    """The CLI README's example block under "## `weightslab cli`", then the root README's."""
    section = CLI_README.split("## `weightslab cli`", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the CLI README's example block is gone"
    lines = [_strip_comment(line) for line in block.group(1).splitlines()]
    inline = [c for c in re.findall(r"`(weightslab cli[^`]*)`", ROOT_README)]
    return [line for line in lines if line] + inline


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SnippetRun:
    def __init__(self, tmp: Path) -> None:
        self.home = tmp / "home"
        self.home.mkdir()
        (tmp / "empty.env").write_text("")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GRPC_", "CLI_", "WEIGHTSLAB_", "WL_", "AUDIT_", "ENVOY_"))}
        env.update({"HOME": str(self.home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                    "GRPC_BACKEND_HOST": "127.0.0.1", "GRPC_BACKEND_PORT": str(_free_port()),
                    "CLI_HOST": "127.0.0.1", "CLI_PORT": "0", "WEIGHTSLAB_ROOT_LOG_DIR": str(tmp / "run"),
                    "WEIGHTSLAB_ENV_FILE": str(tmp / "empty.env"), "WEIGHTSLAB_LOG_LEVEL": "WARNING",
                    "PYTHONUNBUFFERED": "1"})
        self.env = env
        init = self.shell("weightslab certs init")  # as the README says, before serving
        assert init.returncode == 0, init.stderr
        script = tmp / "train.py"
        script.write_text(PRELUDE + "\n" + python_snippet())
        self.log = (tmp / "train.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.log_path = tmp / "train.log"

    def shell(self, command: str, timeout: float = STARTUP) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", command], env=self.env, cwd=self.home, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def wait_trained(self) -> None:
        """The script's own entry appears; then it trains all its steps and reaches keep_serving."""
        deadline = time.monotonic() + STARTUP
        entry = self.home / ".weightslab" / "cli" / f"{self.proc.pid}.json"
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text(errors="replace")[-3000:]
            if entry.exists():
                out = self.shell("weightslab cli --json status")
                if out.returncode == 0 and json.loads(out.stdout)["status"].get("step", 0) >= STEPS:
                    return
            time.sleep(0.2)
        raise AssertionError("the README snippet did not train and serve in time:\n"
                             + self.log_path.read_text(errors="replace")[-3000:])

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # Ctrl+C: wl.keep_serving() returns, the script ends
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                return None
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def snippet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnippetRun]:
    run = SnippetRun(tmp_path_factory.mktemp("readme"))
    try:
        run.wait_trained()
        yield run
    finally:
        code = run.stop()
    assert code == 0, f"the README snippet did not end cleanly on Ctrl+C (exit {code})"


def test_the_snippet_trains_and_keeps_serving(snippet: SnippetRun) -> None:
    out = snippet.shell("weightslab cli --json status")
    assert out.returncode == 0, out.stderr
    status: dict[str, Any] = json.loads(out.stdout)["status"]
    assert status["step"] == STEPS and status["samples"] == 96  # the loop ended; the process still serves
    assert snippet.proc.poll() is None


@pytest.mark.parametrize("command", cli_commands())
def test_documented_cli_command_runs_as_written(snippet: SnippetRun, command: str) -> None:
    out = snippet.shell(command)
    assert out.returncode == 0, f"{command!r} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    assert "error:" not in out.stdout + out.stderr, out.stdout + out.stderr


def test_core_readme_query_examples_parse() -> None:
    from weightslab.query import as_query

    section = CORE_README.split("## Query syntax", 1)[1]
    blocks = re.findall(r"```text\n(.*?)```", section, re.S)
    assert len(blocks) >= 2, "the core README's query syntax section lost its grammar or examples"
    examples = [line.strip() for line in blocks[1].splitlines() if line.strip()]
    assert len(examples) >= 5
    for example in examples:
        as_query(example)  # raises QuerySyntaxError with a caret line on drift
