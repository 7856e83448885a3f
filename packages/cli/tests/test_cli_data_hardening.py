"""Issue 12 items 2 and 11 through the real CLI transport: a NUL tag name is refused by the core
(the HDF5 store keeps writing), and a tag edit matching nothing creates no column."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_testutil import LineClient
from weightslab.experiment import Experiment
from weightslab_cli.server import CliServer


@pytest.fixture
def client(experiment: Experiment, serve: Callable[..., CliServer], connect: Any) -> LineClient:
    return connect(serve(experiment).port)


def test_a_nul_tag_name_is_refused_and_the_store_keeps_writing(client: LineClient, experiment: Experiment,
                                                               tmp_path: Path) -> None:
    pytest.importorskip("weightslab_data_cache")
    from weightslab_data_cache.loader import read_store

    assert getattr(experiment.store, "persistent", False), "the HDF5 store is the one this bug broke"
    reply = client.args("tag", "bad\x00name", "1")  # the issue's {"cmd":"tag","args":["bad\u0000name","1"]}
    assert reply["ok"] is False and ("U+0000" in reply["error"] or "NUL" in reply["error"]), reply
    reply = client.args("tag", "bad\x1bname", "1")
    assert reply["ok"] is False and "control character" in reply["error"], reply
    assert client.args("tag", "good", "1", "--split", "train")["ok"]  # id 1 is in train and val
    experiment.record("loss", np.array([9.0]), ["2"], split="train")
    experiment.recorder.drain()
    experiment.store.flush()  # raised forever before: the NUL name travelled with every batch
    rows = read_store(tmp_path / "run" / "store").rows
    assert rows is not None and set(rows.tags) == {"good"}
    assert list(experiment.table.tags) == ["good"]


def test_a_tag_edit_matching_nothing_creates_no_column(client: LineClient, experiment: Experiment) -> None:
    for i in range(20):
        reply = client.cmd(f"tag t{i} --query \"sample_id == 'nope'\"")
        assert reply["ok"] and reply["matched"] == 0, reply
    assert experiment.table.tags == {}


def test_status_says_finished_after_the_training_loop_ended(client: LineClient, experiment: Experiment) -> None:
    import threading

    loop = threading.Thread(target=lambda: [experiment.step_end() for _ in range(5)], name="training-loop")
    loop.start()
    loop.join()
    status = client.cmd("status")["status"]
    assert status["state"] == "finished" and status["step"] == 5, status
    assert status["steps_per_second"] == 0.0 and status["seconds_since_last_step"] >= 0.0
