"""A run restarted on the same root log dir reloads everything from the HDF5 store."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from weightslab.experiment import Experiment
from weightslab.plugins import create_plugin_manager

ENV = {"WEIGHTSLAB_DISABLED_PLUGINS": "grpc_server,cli,watchdog,auth,agent,studio", "WEIGHTSLAB_LOG_LEVEL": "WARNING"}


def _experiment(root, log_level: str = "WARNING") -> Experiment:
    env = {**ENV, "WEIGHTSLAB_LOG_LEVEL": log_level}
    exp = Experiment(kwargs={"root_log_dir": root}, environ=env, pm=create_plugin_manager(env))
    exp.start()
    return exp


def test_restart_reloads_tags_discards_history_and_curves(tmp_path):
    exp = _experiment(tmp_path)
    assert type(exp.store).__name__ == "H5SampleStore"
    exp.register_samples("train", ["0", "1", "2", "3"], np.array([3, 1, 4, 1]))
    for values in ([1.0, 2.0, 3.0, 4.0], [0.5, 1.5, 2.5, 3.5]):
        exp.record("loss", np.array(values), ["0", "1", "2", "3"], split="train")
        exp.step_end()
    exp.edit("tag", ids=["1", "2"], tag="noisy")
    exp.edit("set_category", ids=["3"], tag="quality", value="blurry")
    exp.edit("discard", ids=["0"])
    before = exp.frame()
    exp.shutdown()

    again = _experiment(tmp_path)
    frame = again.frame()
    assert list(frame.sample_id) == list(before.sample_id)
    assert list(frame.discarded) == [True, False, False, False]
    assert list(frame.tags["noisy"]) == [False, True, True, False]
    assert frame.categories["quality"][3] == "blurry"
    assert list(frame.columns["label"]) == [3.0, 1.0, 4.0, 1.0]
    np.testing.assert_allclose(frame.columns["loss"], [0.5, 1.5, 2.5, 3.5])
    rows, steps, values, _ = again.history.arrays("loss")
    assert len(rows) == 8 and sorted(set(steps.tolist())) == [0, 1]
    curve = again.history.curve("loss", split="train")
    assert [p.step for p in curve] == [0, 1] and curve[1].value == 2.0
    assert again.step == 1  # continues from the last recorded step
    # and keeps appending
    again.record("loss", np.array([0.1, 0.1, 0.1, 0.1]), ["0", "1", "2", "3"], split="train")
    again.shutdown()
    third = _experiment(tmp_path)
    assert len(third.history.arrays("loss")[0]) == 12
    third.shutdown()


def test_reloading_an_earlier_run_is_one_clear_info_line(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 20 item 9: reusing a root log dir says so in one INFO line, with how to start fresh."""
    root = tmp_path / "root_log_dir"
    first = _experiment(root)
    first.register_samples("train", [str(i) for i in range(10)], np.arange(10) % 3)
    first.edit("discard", ids=["1", "2"], split="train")
    first.edit("tag", ids=["3", "4", "5"], split="train", tag="hard")
    first.shutdown()
    logger = logging.getLogger("weightslab")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="weightslab"):
            exp = _experiment(root, log_level="INFO")
    finally:
        logger.removeHandler(caplog.handler)
    try:
        lines = [r.getMessage() for r in caplog.records if "earlier run" in r.getMessage()]
        assert len(lines) == 1, caplog.text
        assert lines[0].startswith(f"reloaded an earlier run from root log dir {root}: 10 samples, 2 discarded, "
                                   "3 tagged (1 tags)")
        assert "WEIGHTSLAB_ROOT_LOG_DIR" in lines[0]
        assert int(exp.table.discarded[: exp.table.n].sum()) == 2
    finally:
        exp.shutdown()
