"""Helpers shared by the CLI tests (a module name unique across the repository)."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from weightslab.experiment import Experiment

N_TRAIN = 40
N_VAL = 10


_EMPTY_ENV_FILE: Path | None = None


def empty_env_file() -> Path:
    """An empty ``.env``: the repository's (or a developer's) ``.env`` must not leak into tests."""
    global _EMPTY_ENV_FILE
    if _EMPTY_ENV_FILE is None:
        folder = tempfile.mkdtemp(prefix="wl-cli-tests-")
        atexit.register(shutil.rmtree, folder, True)  # nothing left in /tmp after the run
        _EMPTY_ENV_FILE = Path(folder) / "empty.env"
        _EMPTY_ENV_FILE.write_text("")
    return _EMPTY_ENV_FILE


def base_environ(**extra: str) -> dict[str, str]:
    """A clean environment for an in-process experiment: loopback, no TLS, no token, no .env."""
    # CLI_PORT=0: any free port (never the 50051 default, which a demo or another suite may hold).
    env = {"CLI_HOST": "127.0.0.1", "CLI_PORT": "0", "GRPC_TLS_ENABLED": "0", "WEIGHTSLAB_LOG_LEVEL": "WARNING",
           "WEIGHTSLAB_DISABLE_WATCHDOGS": "1", "HOME": os.environ.get("HOME", "/tmp"),
           "WEIGHTSLAB_ENV_FILE": str(empty_env_file())}
    env.update(extra)
    return env


def make_experiment(root: Path, environ: dict[str, str] | None = None, pm: Any = None) -> Experiment:
    """An experiment with ``N_TRAIN`` train and ``N_VAL`` val samples, a loss and labels."""
    exp = Experiment(kwargs={"root_log_dir": root}, environ=environ or base_environ(), pm=pm)
    exp.start()
    rng = np.random.default_rng(0)
    train_ids = [str(i) for i in range(N_TRAIN)]
    exp.register_samples("train", train_ids, np.arange(N_TRAIN) % 3)
    exp.register_samples("val", [str(i) for i in range(N_VAL)], np.arange(N_VAL) % 3)
    losses = np.linspace(0.0, 3.9, N_TRAIN)  # sample i has loss i/10
    exp.record("loss", losses, train_ids, split="train")
    exp.record("loss", rng.random(N_VAL), [str(i) for i in range(N_VAL)], split="val")
    return exp


class LineClient:
    """A raw protocol client: send bytes/objects, read one JSON reply per line."""

    def __init__(self, port: int, *, ca: Path | None = None, timeout: float = 10.0) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if ca is not None:
            context = ssl.create_default_context(cafile=str(ca))
            self.sock: socket.socket = context.wrap_socket(raw, server_hostname="127.0.0.1")
        else:
            self.sock = raw
        self.reader = self.sock.makefile("rb")
        self.greeting = self.read()

    def read(self) -> dict[str, Any]:
        line = self.reader.readline()
        assert line, "server closed the connection"
        data: dict[str, Any] = json.loads(line)
        return data

    def send_raw(self, data: bytes) -> dict[str, Any]:
        self.sock.sendall(data)
        return self.read()

    def cmd(self, command: str, **extra: Any) -> dict[str, Any]:
        return self.send_raw((json.dumps({"command": command, **extra}) + "\n").encode())

    def args(self, name: str, *args: str) -> dict[str, Any]:
        return self.send_raw((json.dumps({"cmd": name, "args": list(args)}) + "\n").encode())

    def closed(self) -> bool:
        return self.reader.readline() == b""

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def read_audit(root: Path) -> list[dict[str, Any]]:
    path = root / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def lock_held_elsewhere(exp: Experiment, seconds: float = 20.0) -> Iterator[None]:
    """Another thread holds the experiment's main lock for the block (at most ``seconds``)."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with exp.lock:
            held.set()
            release.wait(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(5), "the holder never took the lock"
    try:
        yield
    finally:
        release.set()
        thread.join()
