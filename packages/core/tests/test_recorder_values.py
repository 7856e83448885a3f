"""What the recorder keeps per sample: a value per sample, the mean of a multi-dimensional one
(e.g. a per-pixel loss), and the curve point as the batch mean (killed mutation-smoke survivors)."""

from __future__ import annotations

import numpy as np
from weightslab.experiment import Experiment

ENV = {"WEIGHTSLAB_DISABLED_PLUGINS": "data_cache,grpc_server,cli,watchdog,auth,agent,studio,example",
       "WEIGHTSLAB_LOG_LEVEL": "WARNING"}


def test_multi_dimensional_values_are_reduced_to_one_mean_per_sample(tmp_path) -> None:
    exp = Experiment(kwargs={"root_log_dir": tmp_path}, environ=ENV)
    exp.start()
    try:
        ids = ["a", "b", "c"]
        exp.register_samples("train", ids, np.zeros(3))
        per_pixel = np.arange(12, dtype=float).reshape(3, 2, 2)  # sample i: 4i .. 4i+3
        exp.record("pixel_loss", per_pixel, ids, split="train")
        exp.record("plain", np.array([1.0, 2.0, 6.0]), ids, split="train")
        exp.recorder.drain()
        np.testing.assert_allclose(exp.frame().columns["pixel_loss"], [1.5, 5.5, 9.5])
        rows, _, values, _ = exp.history.arrays("pixel_loss")
        assert len(rows) == 3
        np.testing.assert_allclose(np.sort(values), [1.5, 5.5, 9.5])
        assert [p.value for p in exp.history.curve("plain", split="train")] == [3.0]
        assert [p.value for p in exp.history.curve("pixel_loss", split="train")] == [5.5]
    finally:
        exp.shutdown()
