"""Label corrections from a careless user over a real CLI server on 127.0.0.1: label text that is
not a class index, a class beyond the dataset, an unknown export split, and `weightslab export
labels` to a path that cannot be written (a clear message and exit 1, not a traceback)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_testutil import LineClient, base_environ, make_experiment
from weightslab.experiment import Experiment
from weightslab_cli.server import CliServer


@pytest.fixture
def experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Experiment]:
    # HOME of our own: a ~/certs/.grpc_auth_token left by a demo run would make the server ask a token
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    exp = make_experiment(tmp_path / "run", base_environ(HOME=str(tmp_path / "home"),
                                                         GRPC_TLS_CERT_DIR=str(tmp_path / "certs")))
    yield exp
    exp.shutdown()


@pytest.fixture
def client(experiment: Experiment, serve: Callable[..., CliServer], connect: Any) -> LineClient:
    return connect(serve(experiment).port)


def test_bad_labels_and_splits_are_clear_errors(client: LineClient, experiment: Experiment) -> None:
    cases = {
        "relabel ² 1": "label='²': expected a class index (an integer 0..2147483647",
        "relabel ++1 1": "label='++1': expected a class index",
        f"relabel {'9' * 5000} 1": "expected a class index",
        "relabel 7 1 --split train": "label=7: out of range: the labels of split 'train' go up to 2",
        "export_labels --split trian": "split='trian': unknown split; known splits:",
    }
    for command, message in cases.items():
        reply = client.cmd(command)
        assert not reply["ok"] and message in reply["error"], (command[:40], reply)
        assert len(reply["error"]) < 400
    assert len(experiment.label_edits) == 0


def test_export_labels_to_an_unwritable_path_exits_with_a_message(
        client: LineClient, experiment: Experiment, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from weightslab_cli.main import main

    assert client.cmd("relabel 2 1 --split train")["changed"] == 1
    blocker = tmp_path / "a-file"
    blocker.write_text("keep")
    code = main(["export", "labels", "--discovery-file", str(tmp_path / "cli.json"),
                 "--out", str(blocker / "labels.csv")])
    err = capsys.readouterr().err
    assert code == 1 and "cannot write the label export" in err and "Traceback" not in err
    assert blocker.read_text() == "keep"
