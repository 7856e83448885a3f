"""Every bad request gets INVALID_ARGUMENT with a message naming the field."""

from __future__ import annotations

import grpc
import pytest
from grpc_testutil import TIMEOUT, Env, pb, rpc_error

P = pb
CASES = [
    ("Resume", P.ResumeRequest(steps=0), "steps=0: expected 1..1000000000"),
    ("Resume", P.ResumeRequest(steps=-5), "steps=-5"),
    ("SetHyperParameter", P.SetHyperParameterRequest(value=P.Value(number=1)), "key: required"),
    ("SetHyperParameter", P.SetHyperParameterRequest(key="lr"), "value: required"),
    ("SetHyperParameter", P.SetHyperParameterRequest(key="lr", value=P.Value()), "value: required"),
    ("SetHyperParameter", P.SetHyperParameterRequest(key="nope", value=P.Value(number=1)),
     "key: unknown hyperparameter 'nope'"),
    ("SetHyperParameter", P.SetHyperParameterRequest(key="lr", value=P.Value(string="abc")), "value: "),
    ("SetHyperParameter", P.SetHyperParameterRequest(key="batch_size", value=P.Value(number=1.5)),
     "value: batch_size=1.5: expected an integer"),
    ("SetHyperParameter", P.SetHyperParameterRequest(key="lr", value=P.Value(json="{not json")),
     "value.json: not valid JSON"),
    ("SetHyperParameter", P.SetHyperParameterRequest(key="lr", value=P.Value(json="NaN")), "value.json"),
    ("GetCurves", P.GetCurvesRequest(since_seq=-1), "since_seq=-1: expected >= 0"),
    ("GetCurves", P.GetCurvesRequest(max_points=2), "max_points=2: expected 0 (no cap) or 4..1000000"),
    ("GetCurves", P.GetCurvesRequest(min_step=5, max_step=1), "max_step=1: expected >= min_step=5"),
    ("GetCurves", P.GetCurvesRequest(signals=["loss", ""]), "signals[1]: required"),
    ("GetCurves", P.GetCurvesRequest(split="x" * 300), "split: 300 characters"),
    ("BreakBySlices", P.BreakBySlicesRequest(tags=["hard"]), "signal: required"),
    ("BreakBySlices", P.BreakBySlicesRequest(signal="loss"), "tags: give at least one tag"),
    ("BreakBySlices", P.BreakBySlicesRequest(signal="nope", tags=["hard"]), "signal='nope'"),
    ("QuerySamples", P.QuerySamplesRequest(page=P.Page(limit=0)), "page.limit=0: expected 1..10000"),
    ("QuerySamples", P.QuerySamplesRequest(page=P.Page(limit=10001)), "page.limit=10001"),
    ("QuerySamples", P.QuerySamplesRequest(query=P.SampleQuery(text="loss >> 2")), "query.text: expected a value"),
    ("QuerySamples", P.QuerySamplesRequest(query=P.SampleQuery(text="nope > 2")), "unknown column 'nope'"),
    ("QuerySamples", P.QuerySamplesRequest(query=P.SampleQuery(spec_json="[1, 2]")),
     "query.spec_json: expected a JSON object"),
    ("QuerySamples", P.QuerySamplesRequest(query=P.SampleQuery(spec_json="{")), "query.spec_json: not valid JSON"),
    ("QuerySamples", P.QuerySamplesRequest(query=P.SampleQuery(spec_json='{"filtr": {}}')),
     "query.spec_json: invalid query: filtr"),
    ("QuerySamples", P.QuerySamplesRequest(query=P.SampleQuery(spec_json='{"filter": {"op": "<", "column": '
                                                                         '"split", "value": 1}}')), "split"),
    ("QuerySamples", P.QuerySamplesRequest(sort=[P.SortKey(column="")]), "sort[0].column: required"),
    ("QuerySamples", P.QuerySamplesRequest(sort=[P.SortKey(column="zzz")]), "sort[0].column: unknown column 'zzz'"),
    ("QuerySamples", P.QuerySamplesRequest(columns=["label", "zzz"]), "columns[1]: unknown column 'zzz'"),
    ("QuerySamples", P.QuerySamplesRequest(query=P.SampleQuery(text="group by label: count")),
     "query: grouped queries"),
    ("GetHistogram", P.GetHistogramRequest(), "column: required for a histogram by value"),
    ("GetHistogram", P.GetHistogramRequest(column="label", bins=5000), "bins=5000: expected 1..4096"),
    ("GetHistogram", P.GetHistogramRequest(column="label", mode=7), "mode=7"),
    ("GetHistogram", P.GetHistogramRequest(column="zzz"), "column: unknown column 'zzz'"),
    ("GetHistogram", P.GetHistogramRequest(column="label", min=1.0), "min/max: give both or neither"),
    ("GetHistogram", P.GetHistogramRequest(column="label", min=2.0, max=1.0), "max=1: expected > min=2"),
    ("GetTrajectory", P.GetTrajectoryRequest(), "sample_id: required"),
    ("GetTrajectory", P.GetTrajectoryRequest(sample_id="nope"), "unknown sample ids (1): nope"),
    ("GetTrajectory", P.GetTrajectoryRequest(sample_id="1", signals=["acc"]), "signals[0]='acc'"),
    ("GetThumbnail", P.GetThumbnailRequest(sample_id="1", size=100000), "size=100000"),
    ("GetThumbnail", P.GetThumbnailRequest(split="train"), "sample_id: required"),
    ("StreamSample", P.StreamSampleRequest(sample_id="1", chunk_bytes=10), "chunk_bytes=10"),
    ("EditSamples", P.EditSamplesRequest(ids=P.SampleIds(ids=["1"])), "action=0: expected one of EDIT_ACTION_TAG"),
    ("EditSamples", P.EditSamplesRequest(action=P.EDIT_ACTION_TAG, ids=P.SampleIds(ids=["1"])), "tag: required"),
    ("EditSamples", P.EditSamplesRequest(action=P.EDIT_ACTION_DISCARD), "target: give ids or query"),
    ("EditSamples", P.EditSamplesRequest(action=P.EDIT_ACTION_DISCARD, ids=P.SampleIds()), "ids.ids: expected at"),
    ("EditSamples", P.EditSamplesRequest(action=P.EDIT_ACTION_DISCARD, ids=P.SampleIds(ids=["1", ""])),
     "ids.ids[1]: required"),
    ("EditSamples", P.EditSamplesRequest(action=P.EDIT_ACTION_DISCARD, ids=P.SampleIds(ids=["zz"])),
     "unknown sample ids (1): zz"),
    ("EditSamples", P.EditSamplesRequest(action=P.EDIT_ACTION_SET_CATEGORY, tag="q", ids=P.SampleIds(ids=["1"])),
     "value: required"),
    ("EditSamples", P.EditSamplesRequest(action=P.EDIT_ACTION_TAG, tag="a=b", ids=P.SampleIds(ids=["1"])),
     "tag: tag name 'a=b'"),
    ("EditSamples", P.EditSamplesRequest(action=P.EDIT_ACTION_DISCARD, query=P.SampleQuery()), "query: empty"),
    ("EditSamples", P.EditSamplesRequest(action=P.EDIT_ACTION_DISCARD, query=P.SampleQuery(text="loss <")),
     "query.text: "),
    ("RestoreCheckpoint", P.RestoreCheckpointRequest(), "target: give checkpoint_id or step"),
    ("AgentQuery", P.AgentQueryRequest(), "question: required"),
    ("AgentChangeModel", P.AgentChangeModelRequest(), "model: required"),
    ("AgentHistory", P.AgentHistoryRequest(limit=20000), "limit=20000"),
]


@pytest.mark.parametrize(("method", "request_message", "expected"), CASES,
                         ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(CASES)])
def test_invalid_argument_names_the_field(stub, method: str, request_message, expected: str) -> None:
    call = getattr(stub, method)
    err = rpc_error(call, request_message)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    assert expected in err.details(), err.details()


def test_malformed_bytes_are_invalid_argument(shared_env: Env) -> None:
    channel = shared_env.channel()
    call = channel.unary_unary("/weightslab.v1.ExperimentService/QuerySamples",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as err:
        call(b"\xff\xff\xff", timeout=TIMEOUT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request: not a valid weightslab.v1.QuerySamplesRequest message" in err.value.details()


def test_ambiguous_sample_id_needs_a_split(make_env) -> None:
    env = make_env(populate_data=False)
    env.experiment.register_samples("a", ["x"])
    env.experiment.register_samples("b", ["x"])
    err = rpc_error(env.stub().GetTrajectory, pb.GetTrajectoryRequest(sample_id="x"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "split: sample 'x' is in several splits (a, b)" in err.details()
