"""One application layer: the same queries, edits (ids, query, top-k), histograms and curve
requests through the SDK, the CLI server and gRPC (real servers on 127.0.0.1, port 0) against one
experiment give identical results and identical audit records apart from the transport."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

grpc = pytest.importorskip("grpc")
pytest.importorskip("weightslab_grpc_server")
pytest.importorskip("weightslab_cli")

from weightslab.operations import curves, histogram, samples  # noqa: E402
from weightslab_cli.client import CliClient  # noqa: E402
from weightslab_grpc_server._generated import experiment_pb2 as pb  # noqa: E402
from weightslab_grpc_server._generated import experiment_pb2_grpc as pb_grpc  # noqa: E402

TOKEN = "parity-test-token-0123456789abcdef"
TIMEOUT = 20
QUERY = 'split == "train" and loss > 0.3 sort by loss desc, sample_id limit 7'
EDIT_IDS = ["3", "5", "8"]
TOP_QUERY = "top 5 by loss"
DISCARD_QUERY = 'split == "train" and loss > 0.9'


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import weightslab as wl
    from weightslab.sdk import reset_experiment

    reset_experiment()
    (tmp_path / "empty.env").write_text("")
    for name in list(os.environ):
        if name.startswith(("GRPC_", "CLI_", "WEIGHTSLAB_", "AUDIT_", "WL_")) and name != "WL_TEST_TIMEOUT":
            monkeypatch.delenv(name)
    for name, value in {"HOME": str(tmp_path / "home"), "WEIGHTSLAB_ENV_FILE": str(tmp_path / "empty.env"),
                        "WEIGHTSLAB_ROOT_LOG_DIR": str(tmp_path / "root"), "GRPC_BACKEND_HOST": "127.0.0.1",
                        "GRPC_BACKEND_PORT": "0", "CLI_HOST": "127.0.0.1", "CLI_PORT": "0",
                        "GRPC_TLS_ENABLED": "0", "GRPC_AUTH_TOKEN": TOKEN, "WEIGHTSLAB_LOG_LEVEL": "WARNING",
                        "AUDIT_LOG_FORMAT": "json", "WEIGHTSLAB_DISABLE_WATCHDOGS": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    experiment = wl.get_experiment()
    rng = np.random.default_rng(7)
    train, val = [str(i) for i in range(40)], [f"v{i}" for i in range(10)]
    experiment.register_samples("train", train, np.arange(40) % 4)
    experiment.register_samples("val", val, np.arange(10) % 4)
    for _ in range(30):
        experiment.record("loss", rng.random(40), train, split="train")
        experiment.record("loss", rng.random(10), val, split="val")
        experiment.step_end()
    experiment.edit("set_category", ids=["1", "2", "v1"], tag="quality", value="blurry")
    services = wl.serve(serving_grpc=True, serving_cli=True)
    channel = grpc.insecure_channel(f"127.0.0.1:{services['grpc'].port}")
    stub = pb_grpc.ExperimentServiceStub(channel)
    cli = CliClient("127.0.0.1", services["cli"].port, token=TOKEN, timeout=TIMEOUT)
    yield wl, experiment, stub, cli
    cli.close()
    channel.close()
    reset_experiment()


def _grpc(stub: Any, method: str, request: Any) -> Any:
    return getattr(stub, method)(request, timeout=TIMEOUT, metadata=(("authorization", f"Bearer {TOKEN}"),))


def _cli(cli: CliClient, *words: str) -> dict[str, Any]:
    reply = cli.request(list(words))
    assert reply["ok"], reply
    return reply


def test_queries_histograms_and_curves_agree(served: Any) -> None:
    wl, experiment, stub, cli = served
    # query: filter + sort + page
    sdk = samples.query_samples(experiment, samples.QuerySamplesRequest(query=QUERY, columns=("loss",)))
    over_cli = _cli(cli, "query", QUERY)
    over_grpc = _grpc(stub, "QuerySamples", pb.QuerySamplesRequest(query=pb.SampleQuery(text=QUERY), columns=["loss"]))
    assert sdk.total == over_cli["total"] == over_grpc.total > 7
    assert list(sdk.sample_ids) == [r["sample_id"] for r in over_cli["rows"]] == [r.sample_id for r in over_grpc.rows]
    assert list(sdk.values[0]) == [r["loss"] for r in over_cli["rows"]] == [r.values[0].number for r in over_grpc.rows]
    # histograms: numeric, text (one bin per value) and by position
    for column, mode, query in (("loss", "value", 'split == "train"'), ("tag:quality", "value", ""),
                                ("", "position", "sort by loss desc")):
        sdk_hist = histogram.histogram(experiment, histogram.HistogramRequest(query=query, mode=mode, column=column,
                                                                             bins=8))
        words = ["hist", *([column] if column else []), "--bins", "8"]
        words += ["--by-position"] if mode == "position" else []
        words += ["--query", query] if query else []
        cli_hist = _cli(cli, *words)["histogram"]
        grpc_hist = _grpc(stub, "GetHistogram", pb.GetHistogramRequest(
            query=pb.SampleQuery(text=query), column=column, bins=8,
            mode=pb.HISTOGRAM_MODE_BY_POSITION if mode == "position" else pb.HISTOGRAM_MODE_BY_VALUE))
        series = [(s.split, s.discarded, list(s.counts)) for s in sdk_hist.series]
        assert series == [(s["split"], s["discarded"], s["counts"]) for s in cli_hist["series"]]
        assert series == [(s.split, s.discarded, list(s.counts)) for s in grpc_hist.series]
        assert list(sdk_hist.edges) == cli_hist["edges"] == pytest.approx(list(grpc_hist.edges))
        assert list(sdk_hist.categories) == cli_hist["categories"] == list(grpc_hist.categories)
        assert sdk_hist.total == cli_hist["total"] == grpc_hist.total and sdk_hist.total > 0
    # curves: downsampled with the extremes kept, and an incremental cursor
    sdk_curves = curves.get_curves(experiment, curves.CurvesRequest(signals=("loss",), max_points=8))
    cli_curves = _cli(cli, "curves", "loss", "--max-points", "8")["curves"]
    grpc_curves = _grpc(stub, "GetCurves", pb.GetCurvesRequest(signals=["loss"], max_points=8))
    expected = [(s.split, list(s.steps), list(s.values), s.total_points) for s in sdk_curves.series]
    assert expected == [(s["split"], s["steps"], s["values"], s["total_points"]) for s in cli_curves["series"]]
    assert expected == [(s.split, [p.step for p in s.points], [p.value for p in s.points], s.total_points)
                        for s in grpc_curves.series]
    assert all(len(steps) <= 8 and total == 30 for _, steps, _, total in expected)
    assert sdk_curves.next_seq == cli_curves["next_seq"] == grpc_curves.next_seq
    assert not _cli(cli, "curves", "--since", str(cli_curves["next_seq"]))["curves"]["series"]


def _sdk_edits(wl: Any) -> list[tuple[int, int]]:
    return [(r["matched"], r["changed"]) for r in (
        wl.tag_samples(EDIT_IDS, "picked", split="train"), wl.untag_samples(EDIT_IDS, "picked", split="train"),
        wl.tag_samples(tag="top", query=TOP_QUERY), wl.untag_samples(tag="top", query=TOP_QUERY),
        wl.discard_samples(query=DISCARD_QUERY), wl.restore_samples(query=DISCARD_QUERY))]


def _cli_edits(cli: CliClient) -> list[tuple[int, int]]:
    ids = ",".join(EDIT_IDS)
    return [(r["matched"], r["changed"]) for r in (
        _cli(cli, "tag", "picked", ids, "--split", "train"), _cli(cli, "untag", "picked", ids, "--split", "train"),
        _cli(cli, "tag", "top", "--query", TOP_QUERY), _cli(cli, "untag", "top", "--query", TOP_QUERY),
        _cli(cli, "discard", "--query", DISCARD_QUERY), _cli(cli, "restore", "--query", DISCARD_QUERY))]


def _grpc_edits(stub: Any) -> list[tuple[int, int]]:
    def edit(action: int, **kwargs: Any) -> Any:
        return _grpc(stub, "EditSamples", pb.EditSamplesRequest(action=action, **kwargs))

    ids = pb.SampleIds(ids=EDIT_IDS)
    top, discard = pb.SampleQuery(text=TOP_QUERY), pb.SampleQuery(text=DISCARD_QUERY)
    return [(r.matched, r.changed) for r in (
        edit(pb.EDIT_ACTION_TAG, ids=ids, split="train", tag="picked"),
        edit(pb.EDIT_ACTION_UNTAG, ids=ids, split="train", tag="picked"),
        edit(pb.EDIT_ACTION_TAG, query=top, tag="top"), edit(pb.EDIT_ACTION_UNTAG, query=top, tag="top"),
        edit(pb.EDIT_ACTION_DISCARD, query=discard), edit(pb.EDIT_ACTION_RESTORE, query=discard))]


def test_edits_agree_and_are_audited_alike(served: Any) -> None:
    wl, experiment, stub, cli = served
    top_ids = samples.query_samples(experiment, samples.QuerySamplesRequest(query=TOP_QUERY)).sample_ids
    results = {"sdk": _sdk_edits(wl), "cli": _cli_edits(cli), "grpc": _grpc_edits(stub)}
    assert results["sdk"] == results["cli"] == results["grpc"]
    assert results["sdk"][0] == (3, 3) and results["sdk"][2] == (5, 5) and len(top_ids) == 5
    assert results["sdk"][4][0] == results["sdk"][4][1] > 0  # discarded, then all restored
    assert not experiment.table.tags["picked"].any() and not experiment.table.discarded.any()
    records = [json.loads(line) for line in (experiment.root_log_dir / "audit.jsonl").read_text().splitlines()]
    by_transport: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record["action"] == "edit_samples":
            transport = record["caller"]["transport"]
            by_transport.setdefault(transport, []).append(
                {k: v for k, v in record.items() if k not in ("ts", "caller")})
    assert set(by_transport) == {"sdk", "cli", "grpc"}
    assert by_transport["sdk"] == by_transport["cli"] == by_transport["grpc"]
    assert [r["params"].get("query") for r in by_transport["sdk"]] == [None, None, TOP_QUERY, TOP_QUERY,
                                                                        DISCARD_QUERY, DISCARD_QUERY]
    assert all(r["outcome"] == "ok" for r in by_transport["sdk"])
