"""The CLI waits for the main lock at most the watchdog's stuck time (GRPC_WATCHDOG_STUCK_SECONDS)
when that is shorter than WL_LOCK_TIMEOUT_SECONDS: past it the holder counts as stuck anyway."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_testutil import base_environ, lock_held_elsewhere, make_experiment
from weightslab_cli.server import CliServer

pytest.importorskip("weightslab_watchdog")  # the cli nox session installs it


def test_the_watchdog_stuck_time_bounds_the_cli_lock_wait(tmp_path: Path, serve: Callable[..., CliServer],
                                                          connect: Any) -> None:
    exp = make_experiment(tmp_path / "run", base_environ(GRPC_WATCHDOG_STUCK_SECONDS="0.4",
                                                         WL_LOCK_TIMEOUT_SECONDS="30"))
    assert "watchdog" in exp.config
    client = connect(serve(exp).port)
    try:
        with lock_held_elsewhere(exp):
            started = time.monotonic()
            reply = client.cmd("tag busy 1 --split train")
            elapsed = time.monotonic() - started
            assert reply["ok"] is False and "experiment busy" in reply["error"] and "0.4s" in reply["error"], reply
            assert elapsed < 10  # the 0.4 s stuck time, not the 30 s lock timeout
    finally:
        exp.shutdown()
