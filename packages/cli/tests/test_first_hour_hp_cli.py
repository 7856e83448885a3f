"""Issue 20 through the CLI: `hp set batch_size 0` / `-1` refused while a real training loop goes on
(the line protocol and the real `weightslab cli` client), an edit refused when applied shown by
`hp list` / `hp get`, `hp set lr 1e-3` a number, and a second run on a busy root log dir answered
by `weightslab demo` with one line and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_testutil import LineClient, base_environ
from weightslab.experiment import Experiment
from weightslab.hyperparams import HyperParameters
from weightslab_cli.server import start_cli_server

torch = pytest.importorskip("torch")


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll with a deadline."""
    tick = threading.Event()
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        tick.wait(0.01)


class Run:
    """An experiment with a real torch loop in a thread and a CLI server on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        from weightslab.data import WatchedLoader

        self.experiment = exp = Experiment(kwargs={"root_log_dir": root}, environ=base_environ())
        exp.start()
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(96, 8)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int64)
        self.model = torch.nn.Linear(8, 2)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        exp.optimizers["opt"] = self.opt
        self.loader = WatchedLoader(exp, (x, y), loader_name="train", batch_size=16, shuffle=True, seed=0)
        exp.loaders["train"] = self.loader
        self.hp = HyperParameters({"lr": 0.1, "batch_size": 16})
        exp.register_hyperparameters(self.hp)
        self.server = start_cli_server(exp, discovery_file=root.parent / "cli.json")
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._train, name="training-loop", daemon=True)
        self.thread.start()

    def _train(self) -> None:
        loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
        try:
            while not self.stop.is_set():
                for xb, ids, yb in self.loader:
                    self.experiment.step_boundary()
                    losses = loss_fn(self.model(torch.from_numpy(xb)), torch.from_numpy(yb))
                    self.experiment.record("loss", losses.detach(), ids, split="train")
                    self.opt.zero_grad()
                    losses.mean().backward()
                    self.opt.step()
                    self.experiment.step_end()
                    self.stop.wait(0.002)
        except BaseException as exc:  # surfaced by the fixture
            self.error = exc

    def still_training(self) -> None:
        step = self.experiment.step
        wait_for(lambda: self.experiment.step >= step + 3, what="more training steps")
        assert self.thread.is_alive() and self.error is None

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.experiment.shutdown()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    live = Run(tmp_path / "run")
    try:
        yield live
    finally:
        live.close()
    assert live.error is None, live.error


def weightslab_cli(port: int, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real console script (`weightslab cli ...`) in a subprocess with its own HOME."""
    env = {**base_environ(), "HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "weightslab_cli.main", "cli", "--host", "127.0.0.1",
                           "--port", str(port), *args], env=env, capture_output=True, text=True, timeout=60)


def test_bad_values_are_refused_and_training_goes_on(run: Run, tmp_path: Path) -> None:
    client = LineClient(run.server.port)
    try:
        wait_for(lambda: run.experiment.step >= 2, what="the first steps")
        for value in ("0", "-1", "2.5", "x"):
            reply = client.cmd(f"hp set batch_size {value}")
            assert not reply["ok"] and "batch_size=" in reply["error"], reply
        assert "expected an integer >= 1" in client.cmd("hp set batch_size 0")["error"]
        assert "expected a finite number > 0" in client.cmd("hp set lr -1e-3")["error"]
        assert client.cmd("hp")["hyperparameters"]["pending"] == {}
        run.still_training()
        # the real client, as a new user types it
        home = tmp_path / "home"
        home.mkdir()
        for value in ("0", "-1"):
            done = weightslab_cli(run.server.port, home, "hp", "set", "batch_size", value)
            out = done.stdout + done.stderr
            assert f"batch_size={value}: expected an integer >= 1" in out, out
            assert "Traceback" not in out
        run.still_training()
        assert run.loader.batch_size == 16
        reply = client.cmd("hp set lr 1e-3")
        assert reply["ok"] and reply["requested"] == 0.001
        wait_for(lambda: run.opt.param_groups[0]["lr"] == 0.001, what="the new lr")
    finally:
        client.close()


def test_an_edit_refused_when_applied_is_listed_and_training_goes_on(run: Run, tmp_path: Path) -> None:
    def refuse_40(key: str, value: Any) -> None:
        if key == "batch_size" and value == 40:
            raise RuntimeError("40 does not fit in memory")

    run.hp.add_applier(refuse_40)
    client = LineClient(run.server.port)
    try:
        assert client.cmd("hp set batch_size 40")["ok"]  # valid by every rule checked on arrival
        wait_for(lambda: "rejected" in client.cmd("hp")["hyperparameters"], what="the rejection")
        listing = client.cmd("hp list")["hyperparameters"]
        assert listing["applied"]["batch_size"] == 16 and listing["pending"] == {}
        assert listing["rejected"] == {"batch_size": {"value": 40, "reason": "RuntimeError: 40 does not fit in memory",
                                                      "kept": 16}}
        assert client.cmd("hp get batch_size")["rejected"] == listing["rejected"]["batch_size"]
        run.still_training()
        assert run.loader.batch_size == 16
        # the real client, as a new user types it: one clear line per refused key, and in --json
        home = tmp_path / "home"
        home.mkdir()
        line = "batch_size: requested 40 rejected when applied (RuntimeError: 40 does not fit in memory); kept 16"
        for args in (("hp", "list"), ("hp",), ("hp", "get", "batch_size")):
            done = weightslab_cli(run.server.port, home, *args)
            assert done.returncode == 0 and line in done.stdout.splitlines(), (args, done.stdout, done.stderr)
        as_json = json.loads(weightslab_cli(run.server.port, home, "--json", "hp", "list").stdout)
        assert as_json["hyperparameters"]["rejected"] == listing["rejected"]
        got = json.loads(weightslab_cli(run.server.port, home, "--json", "hp", "get", "batch_size").stdout)
        assert got["value"] == 16 and got["rejected"] == listing["rejected"]["batch_size"]
        # an edit the loop accepts clears the key's rejection
        assert client.cmd("hp set batch_size 24")["ok"]
        wait_for(lambda: run.loader.batch_size == 24, what="the accepted batch size")
        wait_for(lambda: "rejected" not in client.cmd("hp")["hyperparameters"], what="the rejection cleared")
        assert "rejected" not in weightslab_cli(run.server.port, home, "hp", "list").stdout
        run.still_training()
    finally:
        client.close()


def test_the_demo_on_a_busy_root_log_dir_says_so_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("weightslab_data_cache")
    pytest.importorskip("sklearn")
    root = tmp_path / "busy"
    holder = Experiment(kwargs={"root_log_dir": root}, environ=base_environ())
    holder.start()  # this process holds the root log dir's store
    try:
        home = tmp_path / "home"
        home.mkdir()
        env = {**base_environ(), "HOME": str(home), "PATH": "/usr/bin:/bin"}
        done = subprocess.run([sys.executable, "-m", "weightslab_cli.main", "demo", "--headless", "--epochs", "1",
                               "--grpc-port", "0", "--cli-port", "0", "--root-log-dir", str(root)],
                              env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    finally:
        holder.shutdown()
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if "is in use by another running WeightsLab process" in line]
    assert len(lines) == 1, done.stderr[-3000:]
    assert str(root) in lines[0] and "WEIGHTSLAB_ROOT_LOG_DIR=<dir>" in lines[0] and "--root-log-dir" in lines[0]
