"""Control calls against a real (tiny) torch training loop running in a thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import grpc
import numpy as np
import pytest
from grpc_testutil import TIMEOUT, Env, pb, rpc_error

torch = pytest.importorskip("torch")


class Loop:
    def __init__(self, env: Env) -> None:
        from weightslab.data import WatchedLoader

        exp = env.experiment
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(256, 8)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int64)
        self.model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        exp.models["model"] = self.model
        exp.optimizers["opt"] = self.opt
        self.loader = WatchedLoader(exp, (x, y), loader_name="train", batch_size=16, shuffle=True, seed=0)
        exp.loaders["train"] = self.loader
        xt = rng.normal(size=(64, 8)).astype(np.float32)
        exp.loaders["test"] = WatchedLoader(exp, (xt, (xt[:, 0] > 0).astype(np.int64)), loader_name="test",
                                            batch_size=32)
        self.experiment = exp
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="training-loop", daemon=True)

    def _run(self) -> None:
        loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
        try:
            while not self.stop.is_set():
                for xb, ids, yb in self.loader:
                    if self.stop.is_set():
                        return
                    logits = self.model(torch.from_numpy(xb))
                    target = torch.from_numpy(yb)
                    losses = loss_fn(logits, target)
                    self.experiment.record("loss", losses.detach(), ids, split="train", logits=logits.detach(),
                                           targets=target, is_loss=True)
                    self.opt.zero_grad()
                    losses.mean().backward()
                    self.opt.step()
                    self.experiment.step_end()
                    time.sleep(0.002)
        except BaseException as exc:  # surfaced by the test
            self.error = exc


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def loop(make_env) -> Iterator[tuple[Env, Loop]]:
    env = make_env(populate_data=False)
    training = Loop(env)
    training.thread.start()
    try:
        yield env, training
    finally:
        training.stop.set()
        env.experiment.control.resume()  # unblock a paused loop
        training.thread.join(10)
    assert training.error is None, training.error


def test_pause_resume_run_n_steps_and_live_lr(loop: tuple[Env, Loop]) -> None:
    env, training = loop
    stub = env.stub()
    status = lambda: stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)  # noqa: E731
    wait_for(lambda: status().step >= 5, what="training to run")
    stub.Pause(pb.PauseRequest(), timeout=TIMEOUT)
    wait_for(lambda: status().waiting, what="the loop to block at a step boundary")
    step = status().step
    time.sleep(0.2)
    assert status().step == step and status().state == pb.TRAINING_STATE_PAUSED
    # a hyperparameter edit while paused is applied at the next step
    stub.SetHyperParameter(pb.SetHyperParameterRequest(key="lr", value=pb.Value(number=0.01)), timeout=TIMEOUT)
    resumed = stub.Resume(pb.ResumeRequest(steps=5), timeout=TIMEOUT)
    assert resumed.steps_left == 5
    wait_for(lambda: status().waiting and status().step == step + 5, what="exactly 5 steps then a pause")
    time.sleep(0.1)
    assert status().step == step + 5 and status().state == pb.TRAINING_STATE_PAUSED
    assert training.opt.param_groups[0]["lr"] == pytest.approx(0.01)
    got = {p.key: p for p in stub.GetHyperParameters(pb.GetHyperParametersRequest(), timeout=TIMEOUT).parameters}
    assert got["lr"].applied.number == pytest.approx(0.01) and not got["lr"].HasField("requested")
    stub.Resume(pb.ResumeRequest(), timeout=TIMEOUT)
    wait_for(lambda: status().step > step + 10, what="training to continue")
    # reads while training: curves grow, queries see the live table
    curves = stub.GetCurves(pb.GetCurvesRequest(signals=["loss"]), timeout=TIMEOUT)
    assert sum(len(s.points) for s in curves.series) > 10
    assert len({s.branch for s in curves.series}) >= 2  # the lr edit started a new branch
    page = stub.QuerySamples(pb.QuerySamplesRequest(query=pb.SampleQuery(text='split == "train" sort by '
                                                                             'loss_mean desc'),
                                                    page=pb.Page(limit=5)), timeout=TIMEOUT)
    assert page.total == 256 and len(page.rows) == 5


def test_discard_while_training_skips_samples(loop: tuple[Env, Loop]) -> None:
    env, training = loop
    stub = env.stub()
    wait_for(lambda: env.experiment.step >= 3, what="training to run")
    spec = json.dumps({"filter": {"op": "in", "column": "sample_id", "values": [str(i) for i in range(128)]}})
    reply = stub.EditSamples(pb.EditSamplesRequest(action=pb.EDIT_ACTION_DISCARD, split="train",
                                                   query=pb.SampleQuery(spec_json=spec)), timeout=TIMEOUT)
    assert reply.matched == 128
    step = env.experiment.step
    wait_for(lambda: env.experiment.step >= step + 20, what="20 more steps")
    env.experiment.recorder.drain()  # the queued records folded in (the recorder thread may lag under load)
    seen = env.experiment.table.last_seen_step[:256]
    recent = np.flatnonzero(seen > step + 2)
    assert len(recent) and recent.min() >= 128  # discarded rows are no longer trained on


def test_core_evaluation_and_checkpoints(loop: tuple[Env, Loop]) -> None:
    env, training = loop
    stub = env.stub()
    status = lambda: stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)  # noqa: E731
    wait_for(lambda: status().step >= 5, what="training to run")
    started = stub.StartEvaluation(pb.StartEvaluationRequest(split="test"), timeout=TIMEOUT)
    assert started.state in ("running", "done") and started.split == "test" and started.id

    def finished() -> bool:
        return stub.GetEvaluationStatus(pb.GetEvaluationStatusRequest(), timeout=TIMEOUT).state != "running"

    wait_for(finished, what="the evaluation pass to finish")
    done = stub.GetEvaluationStatus(pb.GetEvaluationStatusRequest(), timeout=TIMEOUT)
    assert done.state == "done", done.message
    assert done.metrics and done.progress == 1.0
    bad = rpc_error(stub.StartEvaluation, pb.StartEvaluationRequest(split="nope"))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "split='nope'" in bad.details()
    wait_for(lambda: status().state == pb.TRAINING_STATE_RUNNING, what="training to continue")
    # checkpoints: save while running, restore only when paused
    saved = stub.SaveCheckpoint(pb.SaveCheckpointRequest(note="api"), timeout=TIMEOUT)
    assert saved.id and saved.note == "api" and saved.reason == "manual"
    wait_for(lambda: status().step > saved.step + 3, what="more training steps")
    err = rpc_error(stub.RestoreCheckpoint, pb.RestoreCheckpointRequest(checkpoint_id=saved.id))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "pause" in err.details()
    stub.Pause(pb.PauseRequest(), timeout=TIMEOUT)
    wait_for(lambda: status().waiting, what="the loop to block")
    restored = stub.RestoreCheckpoint(pb.RestoreCheckpointRequest(checkpoint_id=saved.id), timeout=TIMEOUT)
    assert restored.step == saved.step and restored.parent_branch == saved.branch
    now = status()
    assert now.step == saved.step and now.branch == restored.branch != saved.branch
    listed = stub.ListCheckpoints(pb.ListCheckpointsRequest(), timeout=TIMEOUT).checkpoints
    assert saved.id in [c.id for c in listed]
    records = [json.loads(line) for line in
               (env.experiment.root_log_dir / "audit.jsonl").read_text().splitlines()]
    restore_records = [r for r in records if r["action"] == "restore_checkpoint"]
    assert [r["outcome"] for r in restore_records] == ["error", "ok"]
    assert restore_records[1]["after"]["step"] == saved.step
