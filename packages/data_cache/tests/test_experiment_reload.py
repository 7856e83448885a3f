"""A run restarted on the same root log dir reloads everything from the HDF5 store."""

from __future__ import annotations

import numpy as np
from weightslab.experiment import Experiment
from weightslab.plugins import create_plugin_manager

ENV = {"WEIGHTSLAB_DISABLED_PLUGINS": "grpc_server,cli,watchdog,auth,agent,studio", "WEIGHTSLAB_LOG_LEVEL": "WARNING"}


def _experiment(root) -> Experiment:
    exp = Experiment(kwargs={"root_log_dir": root}, environ=ENV, pm=create_plugin_manager(ENV))
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
