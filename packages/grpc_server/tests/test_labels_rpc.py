"""Label corrections over a real gRPC server (TLS + token on 127.0.0.1): EditSamples' relabel,
relabel-to-suggestion and revert actions, ExportLabels, audit, and clear errors."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
from grpc_testutil import TIMEOUT, pb, rpc_error


def test_relabel_revert_and_export(make_env) -> None:
    env = make_env()
    stub = env.stub()
    exp = env.experiment
    branch = exp.compute_hash()
    first = stub.EditSamples(pb.EditSamplesRequest(action=pb.EDIT_ACTION_RELABEL, ids=pb.SampleIds(ids=["1", "2"]),
                                                   label=7), timeout=TIMEOUT)
    assert (first.matched, first.changed) == (2, 2) and list(first.sample_ids) == ["1", "2"]
    again = stub.EditSamples(pb.EditSamplesRequest(action=pb.EDIT_ACTION_RELABEL, ids=pb.SampleIds(ids=["1", "2"]),
                                                   label=7), timeout=TIMEOUT)
    assert again.changed == 0
    assert exp.compute_hash() != branch
    # the columns over QuerySamples, with the query syntax
    page = stub.QuerySamples(pb.QuerySamplesRequest(
        query=pb.SampleQuery(text="original_label is not null sort by sample_id"),
        columns=["label", "original_label", "suggested_label", "suggested_label_confidence"]), timeout=TIMEOUT)
    assert page.total == 2
    names = {c.name for c in page.columns}
    assert {"label", "original_label", "suggested_label", "suggested_label_confidence"} <= names

    # relabel to suggestion by query (the suggestions come from the recorded prediction votes)
    suggested = stub.EditSamples(pb.EditSamplesRequest(
        action=pb.EDIT_ACTION_RELABEL_TO_SUGGESTION, query=pb.SampleQuery(text='sample_id in ("10", "11", "12")')),
        timeout=TIMEOUT)
    rows = exp.table.find(["10", "11", "12"], "train")
    want = exp.suggestions.suggestion(rows)
    assert suggested.matched == 3 and suggested.without_suggestion == 0
    assert exp.table.numeric["label"][rows].tolist() == want.astype(float).tolist()

    export = stub.ExportLabels(pb.ExportLabelsRequest(), timeout=TIMEOUT)
    got = {e.id: e for e in export.labels}
    assert set(got) >= {"1", "2"} and got["1"].corrected == 7 and got["1"].original == 1
    assert got["1"].split == "train" and got["1"].by.startswith("grpc") and got["1"].at.endswith("+00:00")
    assert "token_fingerprint=" in got["1"].by and env.token not in got["1"].by

    reverted = stub.EditSamples(pb.EditSamplesRequest(
        action=pb.EDIT_ACTION_REVERT_LABEL,
        query=pb.SampleQuery(spec_json='{"filter": {"op": "not_null", "column": "original_label"}}')),
        timeout=TIMEOUT)
    assert reverted.changed == len(got)
    assert exp.table.numeric["label"][exp.table.find(["1"], "train")].tolist() == [1.0]
    assert list(stub.ExportLabels(pb.ExportLabelsRequest(), timeout=TIMEOUT).labels) == []
    assert exp.compute_hash() == branch

    audit = [json.loads(line) for line in (exp.root_log_dir / "audit.jsonl").read_text().splitlines()]
    actions = [a["params"]["action"] for a in audit if a.get("action") == "relabel_samples"]
    assert actions == ["relabel", "relabel", "relabel_to_suggestion", "revert_label"]
    assert all(a["caller"]["transport"] == "grpc" for a in audit if a.get("action") == "relabel_samples")


def test_relabel_bad_input_is_invalid_argument(make_env) -> None:
    env = make_env()
    stub = env.stub()
    exp = env.experiment
    exp.register_samples("reg", ["r0", "r1"], np.array([0.25, 1.5]))
    torch = pytest.importorskip("torch")  # logits (a tensor) tell the number of classes
    exp.record("loss", np.ones(4), ["0", "1", "2", "3"], split="train", logits=torch.zeros(4, 10),
               targets=np.arange(4), is_loss=True)

    def error(**fields) -> grpc.RpcError:
        return rpc_error(stub.EditSamples, pb.EditSamplesRequest(**fields))

    cases = [
        (dict(action=pb.EDIT_ACTION_RELABEL, ids=pb.SampleIds(ids=["nope"]), label=1), "unknown sample ids"),
        (dict(action=pb.EDIT_ACTION_RELABEL, ids=pb.SampleIds(ids=["1"])), "label=None: expected a class index"),
        (dict(action=pb.EDIT_ACTION_RELABEL, ids=pb.SampleIds(ids=["1"]), label=-3),
         "label=-3: expected a class index"),
        (dict(action=pb.EDIT_ACTION_RELABEL, ids=pb.SampleIds(ids=["1"]), label=10),
         "label=10: out of range: the model has 10 classes"),
        (dict(action=pb.EDIT_ACTION_RELABEL, ids=pb.SampleIds(ids=["r1"]), split="reg", label=1),
         "not supported for this target type"),
        (dict(action=pb.EDIT_ACTION_REVERT_LABEL, ids=pb.SampleIds(ids=["1"]), label=1),
         "label: only the action 'relabel' takes a label"),
        (dict(action=pb.EDIT_ACTION_RELABEL, ids=pb.SampleIds(ids=["1"]), label=1, tag="x"), "tag/value"),
        (dict(action=pb.EDIT_ACTION_RELABEL, label=1), "target: give ids or query"),
        (dict(action=pb.EDIT_ACTION_RELABEL, query=pb.SampleQuery(text="loss >"), label=1), "query.text"),
    ]
    for fields, message in cases:
        err = error(**fields)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (fields, err.details())
        assert message in err.details(), (message, err.details())
    assert len(exp.label_edits) == 0
    audit = [json.loads(line) for line in (exp.root_log_dir / "audit.jsonl").read_text().splitlines()]
    refused = [a for a in audit if a.get("action") == "relabel_samples"]
    assert len(refused) == len(cases) and all(a["outcome"] == "error" for a in refused)
