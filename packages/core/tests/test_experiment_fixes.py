"""Issue 12 item 14 (core part): root_log_dir kwarg $VAR-expanded, runtime instance_aggregation
edits apply to folding (bad values refused), status says finished/idle after the loop ended."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from weightslab.experiment import Experiment
from weightslab.hyperparams import HyperParameterError, HyperParameters


def test_root_log_dir_kwarg_is_var_expanded_after_the_experiment_exists(wl, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("SPOT_BASE", str(tmp_path / "spot"))
    wl.get_experiment()
    exp = wl.get_experiment(root_log_dir="$SPOT_BASE/run1")
    assert exp.root_log_dir == tmp_path / "spot" / "run1"
    assert not any("$" in p.name for p in tmp_path.rglob("*"))


def _folded(exp: Experiment, name: str) -> float:
    exp.record(name, np.array([1.0, 3.0]), ["a", "a"], split="train", per_instance=True,
               annotation_ids=["x", "y"])
    exp.recorder.drain()
    row = exp.table.find(["a"], "train")[0]
    return float(exp.table.numeric[name][row])


def test_a_runtime_instance_aggregation_edit_applies_to_folding(tmp_path: Path) -> None:
    exp = Experiment(kwargs={"root_log_dir": tmp_path / "root"}, environ={})
    exp.register_hyperparameters(HyperParameters({"instance_aggregation": "mean", "lr": 0.1}))
    try:
        assert _folded(exp, "m1") == 2.0
        exp.set_hyperparameter("instance_aggregation", "max")
        exp.hp.apply_pending()
        assert exp.config["experiment"].instance_aggregation == "max"
        assert _folded(exp, "m2") == 3.0
        with pytest.raises(HyperParameterError, match=r"WL_INSTANCE_AGGREGATION.*median|median.*mean"):
            exp.set_hyperparameter("instance_aggregation", "median")
        assert exp.hp.pending() == {}
    finally:
        exp.shutdown()


def test_status_says_finished_after_the_training_thread_ended(tmp_path: Path) -> None:
    exp = Experiment(kwargs={"root_log_dir": tmp_path / "root"}, environ={})
    try:
        assert exp.status()["state"] == "running" and exp.status()["seconds_since_last_step"] is None
        loop = threading.Thread(target=lambda: [exp.step_end() for _ in range(3)])
        loop.start()
        loop.join()
        status = exp.status()
        assert status["state"] == "finished" and status["steps_per_second"] == 0.0
        assert isinstance(status["seconds_since_last_step"], float) and status["step"] == 3
    finally:
        exp.shutdown()


def test_status_says_idle_when_no_step_came_for_a_while(tmp_path: Path) -> None:
    exp = Experiment(kwargs={"root_log_dir": tmp_path / "root"}, environ={})
    try:
        exp.step_end()
        exp.step_end()
        assert exp.status()["state"] == "running"
        exp._last_step_end = time.monotonic() - 60  # the loop (this thread) stopped stepping a minute ago
        status = exp.status()
        assert status["state"] == "idle" and status["seconds_since_last_step"] >= 60
    finally:
        exp.shutdown()
