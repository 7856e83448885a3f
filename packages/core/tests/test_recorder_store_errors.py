"""A sample store that fails to write (disk full, bad value) never costs the in-memory record:
the table, history and curves still get it, the failure is counted and logged once, and the
recorder goes on with the next records."""

from __future__ import annotations

import logging

import numpy as np
from weightslab.experiment import Experiment
from weightslab.store import MemorySampleStore

ENV = {"WEIGHTSLAB_DISABLED_PLUGINS": "data_cache,grpc_server,cli,watchdog,auth,agent,studio,example",
       "WEIGHTSLAB_LOG_LEVEL": "WARNING"}


class FullDisk(MemorySampleStore):
    """Every write fails the way a full disk does; counts the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    def _fail(self, *args: object) -> None:
        self.attempts += 1
        raise OSError(28, "No space left on device")

    append_history = append_curve = append_predictions = update_rows = _fail  # type: ignore[assignment]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_store_write_failures_keep_the_records_in_memory(tmp_path) -> None:
    exp = Experiment(kwargs={"root_log_dir": tmp_path}, environ=ENV)
    exp.start()
    store = FullDisk()
    exp.store = store
    handler = Records()
    logging.getLogger("weightslab").addHandler(handler)
    try:
        ids = [str(i) for i in range(6)]
        exp.register_samples("train", ids, np.arange(6) % 2)
        for step in range(3):
            exp.record("loss", np.arange(6, dtype=float) + step, ids, split="train",
                       preds=np.zeros(6, dtype=np.int64))
            exp.step_end()
        exp.recorder.drain()
        rows, steps, values, _ = exp.history.arrays("loss")
        assert len(rows) == 18 and sorted(set(steps.tolist())) == [0, 1, 2]
        assert [p.value for p in exp.history.curve("loss", split="train")] == [2.5, 3.5, 4.5]
        np.testing.assert_allclose(exp.frame().columns["loss"], np.arange(6) + 2.0)
        assert store.attempts >= 9 and exp.recorder.store_errors == store.attempts
        assert exp.recorder.errors == 0  # no record was dropped
        warnings = [r.getMessage() for r in handler.records if r.levelno == logging.WARNING
                    and "sample store rejected a write" in r.getMessage()]
        assert len(warnings) == 1 and "No space left on device" in warnings[0]  # said once, not per batch
    finally:
        logging.getLogger("weightslab").removeHandler(handler)
        exp.store = MemorySampleStore()
        exp.shutdown()
