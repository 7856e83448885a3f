"""Happy path of every RPC, over TLS + mTLS + token, against a real core Experiment."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_testutil import TIMEOUT, Env, FakeCheckpoints, FakeEvaluation, pb, rpc_error
from weightslab.operations._frames import frame_cache
from weightslab.operations.agent import forget_agent
from weightslab_grpc_server.servicer import SERVICE_DESCRIPTOR, SERVICE_NAME


def test_status(stub, shared_env: Env) -> None:
    status = stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
    assert status.name == "grpc-test"
    assert status.state == pb.TRAINING_STATE_RUNNING
    assert status.step == 5
    assert status.samples == 120 and status.active == 120 and status.discarded == 0
    assert dict(status.splits) == {"train": 100, "test": 20}
    assert "loss" in status.signals
    assert status.branch == shared_env.experiment.branch
    assert status.server_version


def test_pause_resume_and_run_n_steps(make_env) -> None:
    env = make_env()
    stub = env.stub()
    paused = stub.Pause(pb.PauseRequest(), timeout=TIMEOUT)
    assert paused.previous_state == pb.TRAINING_STATE_RUNNING and paused.state == pb.TRAINING_STATE_PAUSED
    resumed = stub.Resume(pb.ResumeRequest(steps=3), timeout=TIMEOUT)
    assert resumed.previous_state == pb.TRAINING_STATE_PAUSED and resumed.state == pb.TRAINING_STATE_RUNNING
    assert resumed.HasField("steps_left") and resumed.steps_left == 3
    for _ in range(3):
        env.experiment.step_end()
    assert stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT).state == pb.TRAINING_STATE_PAUSED
    again = stub.Resume(pb.ResumeRequest(), timeout=TIMEOUT)
    assert not again.HasField("steps_left")


def test_hyperparameters_requested_vs_applied(make_env) -> None:
    env = make_env()
    stub = env.stub()
    got = {p.key: p for p in stub.GetHyperParameters(pb.GetHyperParametersRequest(), timeout=TIMEOUT).parameters}
    assert set(got) == {"lr", "optimizer.momentum", "batch_size", "name", "augment"}
    assert got["lr"].applied.number == pytest.approx(0.1) and not got["lr"].HasField("requested")
    assert got["batch_size"].applied.int == 32 and got["augment"].applied.bool is True
    reply = stub.SetHyperParameter(pb.SetHyperParameterRequest(key="lr", value=pb.Value(number=0.01)),
                                   timeout=TIMEOUT)
    assert reply.previous.number == pytest.approx(0.1) and reply.requested.number == pytest.approx(0.01)
    # typed values: an int for a float, a bool, text, JSON
    assert stub.SetHyperParameter(pb.SetHyperParameterRequest(key="optimizer.momentum", value=pb.Value(int=1)),
                                  timeout=TIMEOUT).requested.number == 1.0
    assert stub.SetHyperParameter(pb.SetHyperParameterRequest(key="augment", value=pb.Value(bool=False)),
                                  timeout=TIMEOUT).requested.bool is False
    assert stub.SetHyperParameter(pb.SetHyperParameterRequest(key="name", value=pb.Value(string="b")),
                                  timeout=TIMEOUT).requested.string == "b"
    assert stub.SetHyperParameter(pb.SetHyperParameterRequest(key="batch_size", value=pb.Value(json="64")),
                                  timeout=TIMEOUT).requested.int == 64
    got = {p.key: p for p in stub.GetHyperParameters(pb.GetHyperParametersRequest(), timeout=TIMEOUT).parameters}
    assert got["lr"].applied.number == pytest.approx(0.1) and got["lr"].requested.number == pytest.approx(0.01)
    env.experiment.step_boundary()  # the loop applies pending edits at the next step
    got = {p.key: p for p in stub.GetHyperParameters(pb.GetHyperParametersRequest(), timeout=TIMEOUT).parameters}
    assert got["lr"].applied.number == pytest.approx(0.01) and not got["lr"].HasField("requested")
    assert got["batch_size"].applied.int == 64


def test_curves_all_and_filtered(stub) -> None:
    reply = stub.GetCurves(pb.GetCurvesRequest(), timeout=TIMEOUT)
    by_split = {s.split: s for s in reply.series if s.signal == "loss"}
    assert set(by_split) == {"train", "test"}
    assert [p.step for p in by_split["train"].points] == [0, 1, 2, 3, 4]
    assert reply.next_seq > 0 and reply.branches
    only = stub.GetCurves(pb.GetCurvesRequest(signals=["loss"], split="test", min_step=1, max_step=3),
                          timeout=TIMEOUT)
    assert [(s.split, [p.step for p in s.points]) for s in only.series] == [("test", [1, 2, 3])]
    assert not stub.GetCurves(pb.GetCurvesRequest(since_seq=reply.next_seq), timeout=TIMEOUT).series


def test_curve_downsampling_keeps_extremes(make_env) -> None:
    env = make_env(populate_data=False)
    values = np.sin(np.linspace(0, 20, 1000))
    values[123], values[777] = 5.0, -5.0
    for step, value in enumerate(values.tolist()):
        env.experiment.history.append_curve("acc", "train", "b1", step, value)
    reply = env.stub().GetCurves(pb.GetCurvesRequest(signals=["acc"], max_points=50), timeout=TIMEOUT)
    (series,) = reply.series
    assert series.downsampled and series.total_points == 1000 and len(series.points) <= 50
    got = [p.value for p in series.points]
    assert max(got) == 5.0 and min(got) == -5.0
    steps = [p.step for p in series.points]
    assert steps[0] == 0 and steps[-1] == 999 and steps == sorted(steps)


def test_break_by_slices(stub, shared_env: Env) -> None:
    reply = stub.BreakBySlices(pb.BreakBySlicesRequest(signal="loss", tags=["hard"]), timeout=TIMEOUT)
    assert reply.matched_samples == 10 and reply.max_points == 200
    (series,) = reply.series
    assert [p.step for p in series.points] == [0, 1, 2, 3, 4]
    rows, steps, values, _ = shared_env.experiment.history.arrays("loss")
    mask = (rows < 10) & (steps == 2)
    assert series.points[2].value == pytest.approx(values[mask].mean())
    cat = stub.BreakBySlices(pb.BreakBySlicesRequest(signal="loss", tags=["hard", "quality=blurry"]),
                             timeout=TIMEOUT)
    assert cat.matched_samples == 5


def test_break_by_slices_caps_points(make_env) -> None:
    env = make_env(populate_data=False, WL_MAX_POINTS_PER_SAMPLE=7)
    exp = env.experiment
    exp.register_samples("train", ["a", "b"])
    for _ in range(50):
        exp.record("loss", np.array([1.0, 3.0]), ["a", "b"], split="train")
        exp.step_end()
    exp.edit("tag", ids=["a", "b"], tag="x")
    reply = env.stub().BreakBySlices(pb.BreakBySlicesRequest(signal="loss", tags=["x"]), timeout=TIMEOUT)
    (series,) = reply.series
    steps = [p.step for p in series.points]
    assert len(steps) == 7 and steps[0] == 0 and steps[-1] == 49 and series.downsampled
    assert all(p.value == 2.0 for p in series.points)


def test_break_by_slices_zero_means_no_cap(make_env) -> None:
    """WL_MAX_POINTS_PER_SAMPLE=0: every step of a curve longer than the 200 default comes back."""
    env = make_env(populate_data=False, WL_MAX_POINTS_PER_SAMPLE=0)
    exp = env.experiment
    exp.register_samples("train", ["a", "b", "c"])
    for step in range(230):
        exp.record("loss", np.array([1.0, 3.0, 100.0]) + step, ["a", "b", "c"], split="train")
        exp.step_end()
    exp.edit("tag", ids=["a", "b"], tag="x")
    reply = env.stub().BreakBySlices(pb.BreakBySlicesRequest(signal="loss", tags=["x"]), timeout=TIMEOUT)
    assert reply.max_points == 0 and reply.matched_samples == 2
    (series,) = reply.series
    assert not series.downsampled and series.total_points == 230
    assert [p.step for p in series.points] == list(range(230))
    assert all(p.value == 2.0 + p.step for p in series.points)  # the mean of the tagged samples only


def test_query_samples_text_and_json(stub) -> None:
    reply = stub.QuerySamples(pb.QuerySamplesRequest(
        query=pb.SampleQuery(text='split == "train" and has:hard sort by loss desc'),
        page=pb.Page(offset=0, limit=4), columns=["label", "loss", "tag:quality"]), timeout=TIMEOUT)
    assert reply.total == 10 and len(reply.rows) == 4
    assert [c.name for c in reply.columns] == ["label", "loss", "tag:quality"]
    assert [c.type for c in reply.columns] == [pb.COLUMN_TYPE_NUMBER, pb.COLUMN_TYPE_NUMBER, pb.COLUMN_TYPE_STRING]
    losses = [r.values[1].number for r in reply.rows]
    assert losses == sorted(losses, reverse=True)
    for row in reply.rows:
        assert row.split == "train" and "hard" in row.tags and not row.discarded
        assert row.values[0].number == int(row.sample_id) % 10
        if int(row.sample_id) < 5:
            assert row.categories["quality"] == "blurry" and row.values[2].string == "blurry"
        else:
            assert row.values[2].WhichOneof("kind") is None
    spec = {"filter": {"op": "<", "column": "label", "value": 3}, "sort": [{"column": "sample_id"}],
            "page": {"offset": 2, "limit": 3}}
    by_json = stub.QuerySamples(pb.QuerySamplesRequest(query=pb.SampleQuery(spec_json=json.dumps(spec))),
                                timeout=TIMEOUT)
    assert by_json.total == 30 + 6 and by_json.offset == 2
    assert [r.sample_id for r in by_json.rows] == ["2", "10", "11"]  # numeric-aware id order
    # request sort/page override the query's
    over = stub.QuerySamples(pb.QuerySamplesRequest(
        query=pb.SampleQuery(text='label < 3 and split == "train" sort by sample_id limit 1'), sort=[pb.SortKey(column="sample_id",
                                                                                          descending=True)],
        page=pb.Page(limit=2)), timeout=TIMEOUT)
    assert [r.sample_id for r in over.rows] == ["92", "91"]
    everything = stub.QuerySamples(pb.QuerySamplesRequest(), timeout=TIMEOUT)
    assert everything.total == 120 and len(everything.rows) == 100
    names = [c.name for c in everything.columns]
    assert names[:2] == ["label", "prediction"] and "loss" in names and "suspected_mislabel" in names


def test_histograms(stub) -> None:
    by_value = stub.GetHistogram(pb.GetHistogramRequest(column="label", bins=10), timeout=TIMEOUT)
    assert len(by_value.edges) == 11 and by_value.total == 120
    counts = {(s.split, s.discarded): list(s.counts) for s in by_value.series}
    assert counts[("train", False)] == [10] * 10 and counts[("test", False)] == [2] * 10
    assert counts[("train", True)] == [0] * 10
    by_pos = stub.GetHistogram(pb.GetHistogramRequest(mode=pb.HISTOGRAM_MODE_BY_POSITION, bins=6,
                                                      sort=[pb.SortKey(column="split")]), timeout=TIMEOUT)
    counts = {(s.split, s.discarded): list(s.counts) for s in by_pos.series}
    assert counts[("test", False)] == [20, 0, 0, 0, 0, 0]  # "test" sorts first
    assert list(by_pos.edges) == [0, 20, 40, 60, 80, 100, 120]
    ranged = stub.GetHistogram(pb.GetHistogramRequest(column="loss", bins=4, min=0.0, max=0.5,
                                                      query=pb.SampleQuery(text='split == "train"')),
                               timeout=TIMEOUT)
    assert list(ranged.edges) == [0.0, 0.125, 0.25, 0.375, 0.5]
    cats = stub.GetHistogram(pb.GetHistogramRequest(column="tag:quality"), timeout=TIMEOUT)
    assert list(cats.categories) == ["blurry"] and cats.missing == 115


def test_list_splits(stub) -> None:
    splits = {s.name: s for s in stub.ListSplits(pb.ListSplitsRequest(), timeout=TIMEOUT).splits}
    assert splits["train"].samples == 100 and splits["train"].active == 100
    assert splits["test"].samples == 20


def test_trajectory(stub, shared_env: Env) -> None:
    reply = stub.GetTrajectory(pb.GetTrajectoryRequest(sample_id="7", split="train"), timeout=TIMEOUT)
    (traj,) = reply.trajectories
    assert traj.signal == "loss" and list(traj.steps) == [0, 1, 2, 3, 4]
    rows, steps, values, _ = shared_env.experiment.history.arrays("loss")
    row = int(shared_env.experiment.table.find(["7"], "train")[0])
    assert list(traj.values) == pytest.approx(values[rows == row].tolist())
    # split may be omitted when the id is unique
    assert stub.GetTrajectory(pb.GetTrajectoryRequest(sample_id="t3"), timeout=TIMEOUT).split == "test"
    capped = stub.GetTrajectory(pb.GetTrajectoryRequest(sample_id="7", signals=["loss"], max_points=2),
                                timeout=TIMEOUT)
    assert list(capped.trajectories[0].steps) == [0, 4]


def _with_loader(env: Env) -> None:
    from weightslab.data import WatchedLoader

    x = np.arange(6 * 4 * 4, dtype=np.float32).reshape(6, 4, 4)
    loader = WatchedLoader(env.experiment, (x, np.arange(6) % 2), loader_name="media", batch_size=2)
    env.experiment.loaders["media"] = loader


def test_thumbnail_and_stream(make_env) -> None:
    env = make_env(populate_data=False)
    _with_loader(env)
    stub = env.stub()
    thumb = stub.GetThumbnail(pb.GetThumbnailRequest(sample_id="3", split="media", size=64), timeout=TIMEOUT)
    assert thumb.mime_type == "image/x-test" and thumb.data == b"thumb:(4, 4):48.0:64"
    default = stub.GetThumbnail(pb.GetThumbnailRequest(sample_id="3"), timeout=TIMEOUT)
    assert default.data.endswith(b":720")  # WL_DEFAULT_THUMBNAIL_SIZE default
    chunks = list(stub.StreamSample(pb.StreamSampleRequest(sample_id="2", split="media", chunk_bytes=1024),
                                    timeout=TIMEOUT))
    assert chunks[0].mime_type == "application/x-npy"
    blob = b"".join(c.data for c in chunks)
    assert chunks[0].total_bytes == len(blob)
    import io

    arr = np.load(io.BytesIO(blob), allow_pickle=False)
    assert arr.shape == (4, 4) and arr[0, 0] == 32.0


def test_stream_sample_file(make_env, tmp_path) -> None:
    env = make_env(populate_data=False)
    from weightslab.data import WatchedLoader

    paths = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        p.write_bytes(bytes([i]) * (150_000 + i))
        paths.append(str(p))

    class PathDataset:
        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int) -> tuple[str, int]:
            return paths[i], 0

    env.experiment.loaders["files"] = WatchedLoader(env.experiment, PathDataset(), loader_name="files")
    chunks = list(env.stub().StreamSample(pb.StreamSampleRequest(sample_id="1", split="files"), timeout=TIMEOUT))
    assert chunks[0].mime_type == "image/png" and chunks[0].total_bytes == 150_001
    assert len(chunks) == 3 and b"".join(c.data for c in chunks) == bytes([1]) * 150_001
    assert [c.offset for c in chunks] == [0, 65536, 131072]


def test_edit_samples_by_ids_and_query_idempotent(make_env) -> None:
    env = make_env()
    stub = env.stub()
    req = pb.EditSamplesRequest(action=pb.EDIT_ACTION_TAG, ids=pb.SampleIds(ids=["1", "2", "50"]), tag="review")
    first = stub.EditSamples(req, timeout=TIMEOUT)
    assert (first.matched, first.changed) == (3, 3) and sorted(first.sample_ids) == ["1", "2", "50"]
    again = stub.EditSamples(req, timeout=TIMEOUT)
    assert (again.matched, again.changed) == (3, 0)
    discard = stub.EditSamples(pb.EditSamplesRequest(
        action=pb.EDIT_ACTION_DISCARD, query=pb.SampleQuery(text="has:review")), timeout=TIMEOUT)
    assert (discard.matched, discard.changed) == (3, 3)
    assert env.experiment.table.discarded[:3].tolist() == [False, True, True]
    status = stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
    assert status.discarded == 3
    restore = stub.EditSamples(pb.EditSamplesRequest(
        action=pb.EDIT_ACTION_RESTORE, query=pb.SampleQuery(spec_json='{"filter": {"op": "has_tag", "tag": "review"}}')),
        timeout=TIMEOUT)
    assert (restore.matched, restore.changed) == (3, 3)
    cat = stub.EditSamples(pb.EditSamplesRequest(action=pb.EDIT_ACTION_SET_CATEGORY, ids=pb.SampleIds(ids=["t1"]),
                                                 split="test", tag="quality", value="dark"), timeout=TIMEOUT)
    assert cat.changed == 1
    cleared = stub.EditSamples(pb.EditSamplesRequest(action=pb.EDIT_ACTION_CLEAR_CATEGORY,
                                                     query=pb.SampleQuery(text='tag:quality == "dark"'),
                                                     tag="quality"), timeout=TIMEOUT)
    assert (cleared.matched, cleared.changed) == (1, 1)
    untag = stub.EditSamples(pb.EditSamplesRequest(action=pb.EDIT_ACTION_UNTAG, ids=pb.SampleIds(ids=["1"]),
                                                   tag="review"), timeout=TIMEOUT)
    assert untag.changed == 1
    # top-k by query: the 3 highest losses of the train split
    top = stub.EditSamples(pb.EditSamplesRequest(action=pb.EDIT_ACTION_TAG, tag="worst", query=pb.SampleQuery(
        spec_json='{"filter": {"op": "==", "column": "split", "value": "train"}, '
                  '"top_k": {"column": "loss", "k": 3}}')), timeout=TIMEOUT)
    assert top.matched == 3
    frame = env.experiment.frame()
    train = frame.split == "train"
    worst = set(frame.sample_id[train][np.argsort(-frame.columns["loss"][train])[:3]].tolist())
    assert set(top.sample_ids) == worst


def test_evaluation(make_env) -> None:
    env = make_env(populate_data=False)
    stub = env.stub()
    env.experiment.evaluation = None
    err = rpc_error(stub.StartEvaluation, pb.StartEvaluationRequest())
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "evaluation not available" in err.details()
    env.experiment.evaluation = FakeEvaluation()
    started = stub.StartEvaluation(pb.StartEvaluationRequest(split="test"), timeout=TIMEOUT)
    assert started.state == "running" and started.split == "test"
    status = stub.GetEvaluationStatus(pb.GetEvaluationStatusRequest(), timeout=TIMEOUT)
    assert status.progress == 0.5 and dict(status.metrics) == {"accuracy": 0.75}
    assert json.loads(status.details_json)["metrics"]["nan"] == "nan"
    assert stub.CancelEvaluation(pb.CancelEvaluationRequest(), timeout=TIMEOUT).state == "cancelled"
    bad = rpc_error(stub.StartEvaluation, pb.StartEvaluationRequest(split="nope"))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "split='nope'" in bad.details()


def test_checkpoints(make_env) -> None:
    env = make_env()
    stub = env.stub()
    real = env.experiment.checkpoints
    env.experiment.checkpoints = None
    err = rpc_error(stub.ListCheckpoints, pb.ListCheckpointsRequest())
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "checkpoints not available" in err.details()
    env.experiment.checkpoints = FakeCheckpoints(env.experiment)
    saved = stub.SaveCheckpoint(pb.SaveCheckpointRequest(note="before cleanup"), timeout=TIMEOUT)
    assert saved.id == "ckpt-0" and saved.step == 5 and saved.note == "before cleanup" and saved.created_at
    listed = stub.ListCheckpoints(pb.ListCheckpointsRequest(), timeout=TIMEOUT).checkpoints
    assert [c.id for c in listed] == ["ckpt-0"]
    assert stub.RestoreCheckpoint(pb.RestoreCheckpointRequest(checkpoint_id="ckpt-0"), timeout=TIMEOUT).step == 5
    assert stub.RestoreCheckpoint(pb.RestoreCheckpointRequest(step=5), timeout=TIMEOUT).id == "ckpt-0"
    missing = rpc_error(stub.RestoreCheckpoint, pb.RestoreCheckpointRequest(checkpoint_id="zzz"))
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT and "zzz" in missing.details()
    env.experiment.checkpoints = real
    # the core's manager: nothing watched yet -> a clear client error
    err = rpc_error(stub.SaveCheckpoint, pb.SaveCheckpointRequest())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "nothing to checkpoint" in err.details()


def test_agent(make_env) -> None:
    env = make_env(populate_data=False)
    stub = env.stub()
    assert stub.AgentHealth(pb.AgentHealthRequest(), timeout=TIMEOUT).provider == "fake"
    init = stub.AgentInit(pb.AgentInitRequest(provider="openrouter", api_key="sk-secret-123", model="m1"),
                          timeout=TIMEOUT)
    assert init.initialized and init.model == "m1"
    preview = stub.AgentQuery(pb.AgentQueryRequest(question="which are noisy?", preview=True), timeout=TIMEOUT)
    assert json.loads(preview.plan_json)["tag"] == "agent" and not preview.applied
    assert preview.plan_text and preview.matched == 3 and list(preview.sample_ids) == ["1", "2", "3"]
    applied = stub.AgentQuery(pb.AgentQueryRequest(question="tag them"), timeout=TIMEOUT)
    assert applied.applied
    models = stub.AgentModels(pb.AgentModelsRequest(), timeout=TIMEOUT)
    assert models.current == "m1" and [m.id for m in models.models] == ["tiny-model", "big-model"]
    assert models.models[1].description == "big"
    assert stub.AgentChangeModel(pb.AgentChangeModelRequest(model="big-model"), timeout=TIMEOUT).model == "big-model"
    assert not stub.AgentReset(pb.AgentResetRequest(), timeout=TIMEOUT).initialized
    history = stub.AgentHistory(pb.AgentHistoryRequest(limit=3), timeout=TIMEOUT).entries
    assert [e.kind for e in history] == ["question", "model_change", "reset"]
    internal = rpc_error(stub.AgentQuery, pb.AgentQueryRequest(question="boom"))
    assert internal.code() == grpc.StatusCode.INTERNAL and "exploded" not in internal.details()
    bad = rpc_error(stub.AgentQuery, pb.AgentQueryRequest(question="bad"))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "question" in bad.details()
    env.plugin.agent = None
    forget_agent(env.experiment)
    for call, request in ((stub.AgentHealth, pb.AgentHealthRequest()), (stub.AgentReset, pb.AgentResetRequest())):
        err = rpc_error(call, request)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "agent plugin" in err.details()  # installed, no agent


def test_health_and_reflection(shared_env: Env) -> None:
    channel = shared_env.channel()
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                             timeout=TIMEOUT))
    names = {s.name for s in replies[0].list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names
    files = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
        file_containing_symbol=SERVICE_NAME)]), timeout=TIMEOUT))
    assert files[0].file_descriptor_response.file_descriptor_proto


def test_every_method_is_implemented() -> None:
    from weightslab_grpc_server.servicer import ExperimentServicer

    for method in SERVICE_DESCRIPTOR.methods:
        assert callable(getattr(ExperimentServicer, method.name)), method.name


def test_status_matches_core_status(make_env) -> None:
    env = make_env()
    exp = env.experiment
    stub = env.stub()
    for _ in range(2):
        mine, core = stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT), exp.status()
        assert (mine.samples, mine.active, mine.discarded, dict(mine.splits), mine.step, mine.branch) == (
            core["samples"], core["active"], core["discarded"], core["splits"], core["step"], core["branch"])
        assert mine.samples_seen == core["samples_seen"] == int(exp.table.seen_count.sum())
        assert dict(mine.signals) == pytest.approx(core["signals"])
        exp.register_samples("val", [f"v{i}" for i in range(7)])  # rows appended: counted incrementally
        exp.edit("discard", ids=["1", "2", "v3"])
    status = stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
    assert dict(status.splits) == {"train": 100, "test": 20, "val": 7} and status.discarded == 3


def test_paging_is_consistent_and_follows_edits(make_env) -> None:
    env = make_env()
    stub = env.stub()
    seen = []
    for offset in range(0, 120, 7):
        page = stub.QuerySamples(pb.QuerySamplesRequest(query=pb.SampleQuery(text="sort by loss desc, sample_id"),
                                                        page=pb.Page(offset=offset, limit=7), columns=["loss"]),
                                 timeout=TIMEOUT)
        assert page.total == 120
        seen += [(r.values[0].number, r.sample_id) for r in page.rows]
    frame = env.experiment.frame()
    expected = sorted(zip(frame.columns["loss"].tolist(), frame.sample_id.tolist(), strict=True),
                      key=lambda t: -t[0])
    assert seen == expected
    before = stub.QuerySamples(pb.QuerySamplesRequest(query=pb.SampleQuery(text="has:fresh")), timeout=TIMEOUT)
    assert before.total == 0
    env.experiment.edit("tag", ids=["5"], tag="fresh")  # a new table version: caches refresh
    after = stub.QuerySamples(pb.QuerySamplesRequest(query=pb.SampleQuery(text="has:fresh")), timeout=TIMEOUT)
    assert [r.sample_id for r in after.rows] == ["5"] and "fresh" in after.rows[0].tags
    assert len(frame_cache(env.experiment)._orders) == 1  # stale snapshots are not kept alive
