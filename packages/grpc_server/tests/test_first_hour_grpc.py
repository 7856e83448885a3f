"""Issue 20 item 1 over gRPC: a bad SetHyperParameter is refused with INVALID_ARGUMENT naming the
key, the value and what is accepted; an edit that fails when the loop applies it is reported in
GetHyperParameters (last_error) and never stops the real training loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import grpc
import numpy as np
import pytest
from grpc_testutil import TIMEOUT, Env, pb, rpc_error

torch = pytest.importorskip("torch")


class TrainingLoop:
    """A tiny real torch loop over a watched loader, in a thread (steps until stopped)."""

    def __init__(self, env: Env) -> None:
        from weightslab.data import WatchedLoader

        exp = env.experiment
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(128, 8)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int64)
        self.model = torch.nn.Linear(8, 2)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        exp.models["model"], exp.optimizers["opt"] = self.model, self.opt
        self.loader = WatchedLoader(exp, (x, y), loader_name="train", batch_size=16, shuffle=True, seed=0)
        exp.loaders["train"] = self.loader
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
                    self.experiment.step_boundary()  # where pending edits apply
                    losses = loss_fn(self.model(torch.from_numpy(xb)), torch.from_numpy(yb))
                    self.experiment.record("loss", losses.detach(), ids, split="train")
                    self.opt.zero_grad()
                    losses.mean().backward()
                    self.opt.step()
                    self.experiment.step_end()
                    self.stop.wait(0.002)  # leave the two CPUs some air
        except BaseException as exc:  # surfaced by the fixture
            self.error = exc


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll with a deadline."""
    tick = threading.Event()
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        tick.wait(0.01)


@pytest.fixture
def training(make_env) -> Iterator[tuple[Env, TrainingLoop]]:  # noqa: ANN001
    env = make_env(populate_data=False)
    loop = TrainingLoop(env)
    loop.thread.start()
    try:
        yield env, loop
    finally:
        loop.stop.set()
        env.experiment.control.resume()
        loop.thread.join(10)
    assert loop.error is None, loop.error


def _still_training(env: Env, loop: TrainingLoop) -> None:
    step = env.experiment.step
    wait_for(lambda: env.experiment.step >= step + 3, what="more training steps")
    assert loop.thread.is_alive() and loop.error is None


def test_bad_values_are_refused_and_training_goes_on(training: tuple[Env, TrainingLoop]) -> None:
    env, loop = training
    stub = env.stub()
    wait_for(lambda: env.experiment.step >= 2, what="the first steps")
    for value in (pb.Value(int=0), pb.Value(string="-1"), pb.Value(number=-1.0), pb.Value(string="0")):
        err = rpc_error(stub.SetHyperParameter, pb.SetHyperParameterRequest(key="batch_size", value=value))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "batch_size=" in err.details() and "expected an integer >= 1" in err.details(), err.details()
    err = rpc_error(stub.SetHyperParameter, pb.SetHyperParameterRequest(key="lr", value=pb.Value(string="-1e-3")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "lr=-0.001: expected a finite number > 0" in err.details()
    listed = stub.GetHyperParameters(pb.GetHyperParametersRequest(), timeout=TIMEOUT)
    assert not any(p.HasField("requested") for p in listed.parameters)  # nothing was queued
    _still_training(env, loop)
    assert loop.loader.batch_size == 16

    reply = stub.SetHyperParameter(pb.SetHyperParameterRequest(key="lr", value=pb.Value(string="1e-3")),
                                   timeout=TIMEOUT)
    assert reply.requested.number == pytest.approx(0.001)  # a number in any notation
    wait_for(lambda: loop.opt.param_groups[0]["lr"] == pytest.approx(0.001), what="the new lr")


def test_an_edit_refused_when_applied_is_reported_and_training_goes_on(training: tuple[Env, TrainingLoop]) -> None:
    env, loop = training

    def refuse_24(key: str, value: object) -> None:
        if key == "batch_size" and value == 24:
            raise RuntimeError("24 does not fit the accelerator's memory")

    env.hp.add_applier(refuse_24)
    stub = env.stub()
    wait_for(lambda: env.experiment.step >= 2, what="the first steps")
    reply = stub.SetHyperParameter(pb.SetHyperParameterRequest(key="batch_size", value=pb.Value(int=24)),
                                   timeout=TIMEOUT)
    assert reply.requested.int == 24  # valid by every rule: accepted, then refused by the applier

    def last_error() -> str:
        return str(stub.GetHyperParameters(pb.GetHyperParametersRequest(), timeout=TIMEOUT).last_error)

    wait_for(lambda: "rejected" in last_error(), what="the rejection in GetHyperParameters")
    assert last_error() == ("batch_size=24 rejected when applied (RuntimeError: 24 does not fit the accelerator's "
                            "memory); kept 32")
    listed = {p.key: p for p in stub.GetHyperParameters(pb.GetHyperParametersRequest(), timeout=TIMEOUT).parameters}
    assert listed["batch_size"].applied.int == 32 and not listed["batch_size"].HasField("requested")
    _still_training(env, loop)
    # The loader got 24 from the experiment's applier before the next applier refused it: the kept value
    # is applied again, so loader and hyperparameter agree (32, the watched value).
    assert loop.loader.batch_size == 32
