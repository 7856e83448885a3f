"""``data-quality`` over a real CLI connection, and the embedding score columns in ``query``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from cli_testutil import N_TRAIN, N_VAL, LineClient
from weightslab.embeddings import EmbeddingIndex
from weightslab.experiment import Experiment
from weightslab_cli.server import CliServer


def _with_embeddings(experiment: Experiment) -> None:
    rng = np.random.default_rng(0)
    index = EmbeddingIndex(experiment)
    rows = np.arange(N_TRAIN + N_VAL)
    values = rng.normal(size=(len(rows), 8)).astype(np.float32)
    values[N_TRAIN + 1] = values[5] + 1e-4  # val/1 copies train/5: leakage
    values[N_TRAIN - 1] = 50.0  # train/<last> is far from everything
    index.put(rows, values, 1)
    experiment.embeddings = index


def test_data_quality_reports_leakage_and_columns_are_queryable(
        experiment: Experiment, serve: Callable[..., CliServer], connect: Any) -> None:
    client: LineClient = connect(serve(experiment).port)
    reply = client.cmd("data-quality")
    assert not reply["ok"] and "embeddings=True" in reply["error"]
    _with_embeddings(experiment)
    reply = client.cmd("data-quality refresh 30")
    assert reply["ok"], reply
    quality = reply["data_quality"]
    assert quality["completed"] and quality["status"]["state"] == "ready" and quality["status"]["exact"]
    assert quality["leakage_pairs"] == 1
    assert quality["leakage"] == [{"split_a": "train", "sample_id_a": "5", "split_b": "val", "sample_id_b": "1"}]
    status = client.cmd("status")["status"]
    assert status["data_quality"]["leakage"]["pairs"] == 1
    top = client.cmd("query outlier_score > 2 sort by outlier_score desc")
    assert top["ok"] and top["total"] >= 1
    assert top["rows"][0]["sample_id"] == str(N_TRAIN - 1), top["rows"][0]
    dups = client.cmd("query has near_duplicate_of")
    assert dups["total"] == 2
    assert {(r["split"], r["sample_id"]) for r in dups["rows"]} == {("train", "5"), ("val", "1")}
    for bad, why in (("data-quality refresh soon", "WAIT_SECONDS='soon'"), ("data-quality refresh 9999", "wait_seconds"),
                     ("data-quality --pairs 1.5", "whole number"), ("data-quality nope", "unexpected 'nope'")):
        reply = client.cmd(bad)
        assert not reply["ok"] and why in reply["error"], reply
