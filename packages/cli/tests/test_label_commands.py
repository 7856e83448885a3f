"""Label corrections over a real CLI server on 127.0.0.1: relabel (a class or the suggestion),
revert_label, export_labels, and `weightslab export labels` writing CSV and JSON."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_testutil import N_TRAIN, LineClient, read_audit
from weightslab.experiment import Experiment
from weightslab_cli.server import CliServer


@pytest.fixture
def client(experiment: Experiment, serve: Callable[..., CliServer], connect: Any) -> LineClient:
    return connect(serve(experiment).port)


def _label(experiment: Experiment, sid: str, split: str = "train") -> float:
    return float(experiment.table.numeric["label"][experiment.table.find([sid], split)][0])


def test_relabel_revert_and_export_over_the_cli_server(client: LineClient, experiment: Experiment,
                                                         tmp_path: Path) -> None:
    # labels are i % 3; a prediction vote for class 2 on samples 0..5 gives them a suggestion
    ids = [str(i) for i in range(6)]
    experiment.record("loss", np.ones(6), ids, split="train", preds=np.full(6, 2), targets=np.arange(6) % 3,
                      is_loss=True)
    branch = experiment.compute_hash()
    reply = client.cmd("relabel 2 1,3 --split train")
    assert reply["ok"] and (reply["matched"], reply["changed"]) == (2, 2) and reply["sample_ids"] == ["1", "3"]
    assert client.cmd("relabel 2 1 --split train")["changed"] == 0  # idempotent
    assert _label(experiment, "1") == 2.0 and experiment.compute_hash() != branch
    reply = client.cmd('relabel 0 --query loss > 3.7 and split == "train"')
    assert reply["matched"] == 2 and reply["changed"] == int(sum((i % 3) != 0 for i in (38, 39)))
    reply = client.cmd("relabel suggested --query suggested_label == 2 and suggestion_differs == 1")
    assert reply["ok"] and reply["action"] == "relabel_to_suggestion" and reply["matched"] == 2  # 0 and 4
    assert [_label(experiment, s) for s in ("0", "4", "5")] == [2.0, 2.0, 2.0]
    assert client.cmd("query original_label is not null")["total"] == 2 + 1 + 2  # 1, 3; 38; 0, 4

    exported = client.cmd("export_labels")
    assert exported["ok"] and {r["id"] for r in exported["labels"]} == {"0", "1", "3", "4", "38"}
    first = next(r for r in exported["labels"] if r["id"] == "1")
    assert (first["split"], first["original"], first["corrected"]) == ("train", 1, 2)
    assert first["by"].startswith("cli") and first["at"]

    # `weightslab export labels` asks the server and writes the file here
    from weightslab_cli.main import main

    for name in ("labels.csv", "labels.json"):
        assert main(["export", "labels", "--discovery-file", str(tmp_path / "cli.json"),
                     "--out", str(tmp_path / name)]) == 0
    rows = list(csv.DictReader((tmp_path / "labels.csv").open()))
    assert list(rows[0]) == ["id", "split", "original", "corrected", "by", "at"]
    assert {(r["id"], r["original"], r["corrected"]) for r in rows} >= {("1", "1", "2"), ("3", "0", "2")}
    data = json.loads((tmp_path / "labels.json").read_text())
    assert [r["id"] for r in data] == [r["id"] for r in rows] and data[0]["corrected"] in (0, 2)

    reply = client.cmd("revert_label --query original_label is not null")
    assert reply["changed"] == 5 and _label(experiment, "1") == 1.0
    assert client.cmd("export_labels")["labels"] == []
    assert experiment.compute_hash() == branch
    audit = [r for r in read_audit(tmp_path / "run") if r["action"] == "relabel_samples"]
    assert [r["params"]["action"] for r in audit] == ["relabel", "relabel", "relabel", "relabel_to_suggestion",
                                                      "revert_label"]
    assert all(r["caller"]["transport"] == "cli" and r["outcome"] == "ok" for r in audit)


def test_relabel_bad_input_gives_clear_errors(client: LineClient, experiment: Experiment, tmp_path: Path) -> None:
    experiment.register_samples("reg", ["r0", "r1"], np.array([0.5, 2.25]))
    cases = {
        "relabel": "usage: relabel <label|suggested>",
        "relabel 2": "give sample ids or --query",
        "relabel 2 1 --query loss > 1": "give sample ids or --query",
        "relabel cat 1": "label='cat': expected a class index",
        "relabel 1.5 1": "label='1.5': expected a class index",
        "relabel -1 1": "label='-1': expected a class index",
        f"relabel 1 {N_TRAIN + 5} --split train": "unknown sample ids",
        "relabel 1 r1 --split reg": "not supported for this target type",
        "revert_label": "usage: revert_label",
        "export_labels extra": "usage: export_labels",
    }
    for command, message in cases.items():
        reply = client.cmd(command)
        assert not reply["ok"] and message in reply["error"], (command, reply)
    assert len(experiment.label_edits) == 0
    refused = [r for r in read_audit(tmp_path / "run") if r["action"] == "relabel_samples"]
    assert len(refused) == 9 and all(r["outcome"] == "error" for r in refused)
