"""Evaluation passes on a real (small) PyTorch model: splits, tags, cancel, timeout, training state."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
from core_testutil import noisy_digits, wait_for

torch = pytest.importorskip("torch")

from weightslab.evaluation import EvaluationBusy, EvaluationController, compute_timeout  # noqa: E402


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                               torch.nn.Dropout(0.2), torch.nn.Linear(32, 10))


def _setup(wl, n_train=160, n_val=64, batch_size=16):
    torch.set_num_threads(1)
    x, y, y_noisy, _ = noisy_digits(n_train + n_val)
    xt, yt = torch.tensor(x), torch.tensor(y_noisy)
    train = torch.utils.data.TensorDataset(xt[:n_train], yt[:n_train])
    val = torch.utils.data.TensorDataset(xt[n_train:], torch.tensor(y)[n_train:])
    model = wl.watch_or_edit(_model(), flag="model")
    opt = wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), flag="optimizer")
    loader = wl.watch_or_edit(train, flag="data", loader_name="train", batch_size=batch_size, shuffle=True, seed=0)
    val_loader = wl.watch_or_edit(val, flag="data", loader_name="val", batch_size=16)
    loss = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="train_loss")
    exp = wl.get_experiment()
    ctl = EvaluationController(exp)
    exp.evaluation = ctl
    return SimpleNamespace(model=model, opt=opt, loader=loader, val_loader=val_loader, loss=loss, exp=exp, ctl=ctl,
                           x_val=xt[n_train:], y_val=torch.tensor(y)[n_train:])


def _step(s, x, ids, y):
    s.opt.zero_grad()
    s.loss(s.model(x), y, batch_ids=ids).mean().backward()
    s.opt.step()


def _train(wl, s, steps):
    done = 0
    while done < steps:
        for x, ids, y in s.loader:
            with wl.guard_training_context:
                _step(s, x, ids, y)
            done += 1
            if done >= steps:
                return


class _Loop:
    """The user's training loop in a background thread."""

    def __init__(self, wl, s):
        self.stop, self.errors, self.exp = threading.Event(), [], s.exp
        self.thread = threading.Thread(target=self._run, args=(wl, s), daemon=True)

    def _run(self, wl, s):
        try:
            while not self.stop.is_set():
                for x, ids, y in s.loader:
                    if self.stop.is_set():
                        return
                    with wl.guard_training_context:
                        _step(s, x, ids, y)
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.exp.control.resume()  # a loop blocked at its boundary must see the stop
        self.thread.join(10)
        assert not self.thread.is_alive()
        assert not self.errors, self.errors


def _wait_until_stops(ctx):
    """A slow evaluation: keep the batch until the controller says stop (cancel / timeout)."""
    wait_for(ctx.should_stop, timeout=10)


# -- timeout computation -------------------------------------------------------------------
def test_timeout_formula_for_each_setting():
    base = {"timeout_multiplier": 1.3, "timeout_min_seconds": 5.0, "timeout_seconds": 0.0}
    assert compute_timeout(base, 0.5, 20) == pytest.approx(13.0)  # avg * batches * multiplier
    assert compute_timeout(base, 0.01, 10) == 5.0  # the floor
    assert compute_timeout({**base, "timeout_min_seconds": 0.0}, 0.01, 10) == pytest.approx(0.13)
    assert compute_timeout({**base, "timeout_multiplier": 3.0}, 1.0, 4) == pytest.approx(12.0)
    assert compute_timeout({**base, "timeout_seconds": 2.5}, 10.0, 100) == 2.5  # the override wins
    assert compute_timeout({**base, "timeout_seconds": 2.5}, None, 100) == 2.5
    assert compute_timeout(base, None, 20) is None  # not known until a batch was timed
    assert compute_timeout(None, 1.0, 2) == pytest.approx(5.0)  # documented defaults


def test_timeout_settings_come_from_the_environment():
    from weightslab.experiment import Experiment

    exp = Experiment(environ={"WEIGHTSLAB_EVAL_TIMEOUT_MULTIPLIER": "2", "WEIGHTSLAB_EVAL_TIMEOUT_MIN_SECONDS": "0"})
    assert compute_timeout(exp.config["evaluation"], 0.5, 4) == pytest.approx(4.0)
    exp = Experiment(environ={"WEIGHTSLAB_EVAL_TIMEOUT_SECONDS": "7"})
    assert compute_timeout(exp.config["evaluation"], 0.5, 4) == 7.0
    assert compute_timeout(Experiment(environ={}).config["evaluation"], 0.5, 4) == 5.0


# -- passes --------------------------------------------------------------------------------
def test_pass_records_exactly_the_evaluated_samples_and_restores_everything(wl):
    s = _setup(wl)
    _train(wl, s, 4)
    exp, model = s.exp, s.model
    model.train()
    model[3].eval()  # a partly frozen model keeps its per-module modes
    modes = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    params = [p.detach().clone() for p in model.parameters()]
    opt_state = {k: v["momentum_buffer"].clone() for k, v in s.opt.state.items()}
    step, branch = exp.step, exp.branch

    status = s.ctl.evaluate("val", timeout=20)
    assert status["state"] == "done", status
    assert status["split"] == "val" and status["eval_fn"] == "default"
    assert status["batches_done"] == status["batches_total"] == 4 and status["progress"] == 1.0
    metrics = status["metrics"]
    assert set(metrics) == {"eval_loss", "eval_accuracy"}
    # per-sample values for exactly the val samples, equal to an independent computation
    rows, steps, values, _ = exp.history.arrays("eval_loss")
    assert sorted(rows.tolist()) == sorted(s.val_loader.rows.tolist()) and set(steps.tolist()) == {step}
    model.eval()
    with torch.no_grad():
        out = model(s.x_val)
        expected = torch.nn.functional.cross_entropy(out, s.y_val, reduction="none").numpy()
    for module, mode in zip(model.modules(), modes, strict=True):
        module.training = mode
    assert np.allclose(exp.table.numeric["eval_loss"][s.val_loader.rows], expected, atol=1e-5)
    assert metrics["eval_loss"] == pytest.approx(float(expected.mean()), rel=1e-5)
    assert metrics["eval_accuracy"] == pytest.approx(float((out.argmax(1) == s.y_val).float().mean()))
    assert np.isnan(exp.table.numeric["eval_loss"][s.loader.rows]).all()  # train rows untouched
    # a curve point per metric and an evaluation marker
    for name, value in metrics.items():
        points = exp.history.curve(name, split="val")
        assert [(p.step, p.branch) for p in points] == [(step, branch)] and points[0].value == pytest.approx(value)
    marker = exp.history.markers[-1]
    assert marker["kind"] == "evaluation" and marker["split"] == "val" and marker["step"] == step
    assert marker["metrics"] == metrics and marker["branch"] == branch and marker["samples"] == 64
    # nothing about training changed
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(a, b) for a, b in zip(params, model.parameters(), strict=True))
    assert all(torch.equal(opt_state[k], v["momentum_buffer"]) for k, v in s.opt.state.items())
    assert exp.step == step and exp.control.state.value == "running"
    assert not exp.lock.exempt_threads and exp.lock.holder() is None


def test_tag_restricted_pass_and_bad_inputs(wl):
    s = _setup(wl)
    wl.tag_samples(list(range(0, 10)), "a", split="val")
    wl.tag_samples(list(range(5, 15)), "b", split="val")
    wl.tag_samples([6, 7, 30], "quality", split="val", value="blurry")
    status = s.ctl.evaluate("val", tags=["a", "b"], timeout=20)
    assert status["state"] == "done" and status["samples_total"] == 5 and status["tags"] == ["a", "b"]
    rows, _, _, _ = s.exp.history.arrays("eval_loss")
    assert sorted(s.exp.table.sample_id[rows].tolist(), key=int) == ["5", "6", "7", "8", "9"]
    assert s.exp.history.markers[-1]["tags"] == ["a", "b"] and s.exp.history.markers[-1]["samples"] == 5
    status = s.ctl.evaluate("val", tags=["a", "quality=blurry"], timeout=20)
    assert status["state"] == "done" and status["samples_total"] == 2
    status = s.ctl.evaluate("val", max_steps=1, timeout=20)
    assert status["batches_total"] == status["batches_done"] == 1 and status["samples_done"] == 16
    for kwargs, field in [({"split": "nope"}, "split='nope'"), ({"split": "val", "tags": ["zzz"]}, "tags"),
                          ({"split": "val", "tags": ["a", "zzz=1"]}, "tags"),
                          ({"split": "val", "tags": ["quality=sharp"]}, "tags="),
                          ({"split": "val", "max_steps": 0}, "max_steps=0"),
                          ({"split": "val", "eval_fn": "nope"}, "eval_fn='nope'"),
                          ({"split": "val", "resume_after": "yes"}, "resume_after"),
                          ({"split": "val", "model": "other"}, "model='other'")]:
        with pytest.raises(ValueError, match=field):
            s.ctl.start(**kwargs)
    assert s.ctl.status()["state"] == "done"  # the bad requests started nothing


def test_running_training_stays_running_and_is_blocked_during_the_pass(wl):
    s = _setup(wl)
    exp = s.exp
    seen = {}

    @wl.eval_fn
    def my_eval(ctx):
        seen["step_before"] = exp.step
        seen["state"] = exp.control.state.value
        seen["holds_lock"] = exp.lock.held_by_current_thread()
        seen["exempt"] = threading.get_ident() in exp.lock.exempt_threads
        correct = 0
        for x, ids, y, *_ in ctx.batches:
            out = ctx.model(x)
            ctx.record("eval_margin", out.max(1).values, ids)
            correct += int((out.argmax(1) == y).sum())
        seen["step_after"] = exp.step
        seen["training"] = ctx.model.training
        return {"acc": correct / len(ctx.sample_ids)}

    with _Loop(wl, s):
        wait_for(lambda: exp.step >= 3)
        status = s.ctl.evaluate("val", timeout=20)
        assert status["state"] == "done", status
        assert exp.control.state.value == "running" and status["training_state_after"] == "running"
        resumed_from = exp.step
        wait_for(lambda: exp.step >= resumed_from + 3)  # training goes on
    assert seen["step_before"] == seen["step_after"]  # the loop was blocked at its boundary
    assert seen["state"] == "evaluating" and seen["holds_lock"] and seen["exempt"]
    assert seen["training"] is True  # the user's function sees the mode it left the model in
    assert status["eval_fn"] == "my_eval" and set(status["metrics"]) == {"eval_acc"}
    rows, _, _, _ = exp.history.arrays("eval_margin")
    assert sorted(rows.tolist()) == sorted(s.val_loader.rows.tolist())
    assert s.model.training  # restored


def test_paused_stays_paused_and_resume_after(wl):
    s = _setup(wl)
    exp = s.exp

    @wl.eval_fn(name="classic")
    def classic(loader, model):  # the classic eval_fn(data_loader, model) signature
        with torch.no_grad():
            losses = [torch.nn.functional.cross_entropy(model(x), y) for x, _, y in loader]
        return torch.stack(losses).mean()

    with _Loop(wl, s):
        wait_for(lambda: exp.step >= 2)
        wl.pause()
        wait_for(lambda: exp.control.waiting)
        frozen = exp.step
        status = s.ctl.evaluate("val", timeout=20)
        assert status["state"] == "done" and status["eval_fn"] == "classic"
        assert set(status["metrics"]) == {"eval_score"}
        assert status["training_state_before"] == "paused" == exp.control.state.value
        wait_for(lambda: exp.control.waiting)
        assert exp.step == frozen
        status = s.ctl.evaluate("val", eval_fn="default", resume_after=True, timeout=20)
        assert status["state"] == "done" and set(status["metrics"]) == {"eval_loss", "eval_accuracy"}
        wait_for(lambda: exp.step >= frozen + 3)
        assert exp.control.state.value == "running"
        status = s.ctl.evaluate("val", resume_after=False, timeout=20)
        assert status["state"] == "done" and exp.control.state.value == "paused"


def test_cancel_stops_the_pass_and_restores_state(wl):
    s = _setup(wl)
    exp = s.exp
    started = threading.Event()

    @wl.eval_fn
    def slow(ctx):
        for _ in ctx.batches:
            started.set()
            _wait_until_stops(ctx)
        return {"never": 1.0}

    s.model.train()
    s.ctl.start("val")
    wait_for(started.is_set)
    assert s.ctl.status()["state"] == "running" and exp.control.state.value == "evaluating"
    with pytest.raises(EvaluationBusy):
        s.ctl.start("val")
    s.ctl.cancel()
    status = s.ctl.wait(10)
    assert status["state"] == "cancelled", status
    assert status["batches_done"] == 1 < status["batches_total"] and status["metrics"] == {"eval_never": 1.0}
    assert not exp.history.markers and not exp.history.curve("eval_never")  # no marker for a cancelled pass
    assert exp.control.state.value == "running" and s.model.training
    assert exp.lock.holder() is None and not exp.lock.exempt_threads
    assert s.ctl.cancel()["state"] == "cancelled"  # idempotent


def test_timeout_override_from_environment(wl, monkeypatch):
    monkeypatch.setenv("WEIGHTSLAB_EVAL_TIMEOUT_SECONDS", "0.05")
    s = _setup(wl)

    @wl.eval_fn
    def slow(ctx):
        for _ in ctx.batches:
            _wait_until_stops(ctx)

    wl.pause()
    status = s.ctl.evaluate("val", timeout=20)
    assert status["state"] == "timeout", status
    assert status["timeout_seconds"] == 0.05 and status["batches_done"] == 1
    assert s.exp.control.state.value == "paused"  # restored exactly
    assert not s.exp.history.markers


def test_timeout_from_the_formula(wl, monkeypatch):
    monkeypatch.setenv("WEIGHTSLAB_EVAL_TIMEOUT_MULTIPLIER", "0.001")
    monkeypatch.setenv("WEIGHTSLAB_EVAL_TIMEOUT_MIN_SECONDS", "0")
    s = _setup(wl)
    # no training step timed yet: the first evaluation batch sets avg_batch_seconds
    status = s.ctl.evaluate("val", eval_fn="default", timeout=20)
    assert status["state"] == "timeout", status
    assert status["batches_done"] == 1 < status["batches_total"]
    assert status["timeout_seconds"] == pytest.approx(status["avg_batch_seconds"] * 4 * 0.001)
    rows, _, _, _ = s.exp.history.arrays("eval_loss")
    assert len(rows) == 16  # per-sample values of exactly the batch that was evaluated
    # with timed training steps: the estimate is how long a training step takes (same batch size
    # here), known before the pass starts. Each step does at least 0.1 s of "work".
    done = 0
    for x, ids, y in s.loader:
        with wl.guard_training_context:
            _step(s, x, ids, y)
            threading.Event().wait(0.1)
        done += 1
        if done == 4:
            break
    status = s.ctl.evaluate("val", eval_fn="default", timeout=20)
    assert status["state"] == "timeout" and status["batches_done"] < status["batches_total"]
    assert 0.1 <= status["avg_batch_seconds"] < 5, status
    assert status["timeout_seconds"] == pytest.approx(status["avg_batch_seconds"] * 4 * 0.001)
    assert s.exp.control.state.value == "running"


def test_timeout_floor_stops_a_pass_the_formula_would_stop_at_once(wl, monkeypatch):
    """WEIGHTSLAB_EVAL_TIMEOUT_MIN_SECONDS through the real controller: the formula gives a few
    microseconds, the floor (0.3 s) is the timeout that actually stops the pass."""
    monkeypatch.setenv("WEIGHTSLAB_EVAL_TIMEOUT_MULTIPLIER", "0.001")
    monkeypatch.setenv("WEIGHTSLAB_EVAL_TIMEOUT_MIN_SECONDS", "0.3")
    s = _setup(wl)
    _train(wl, s, 4)  # timed training steps: the timeout is known when the pass starts
    wl.pause()

    @wl.eval_fn
    def slow(ctx):
        for _ in ctx.batches:
            _wait_until_stops(ctx)

    status = s.ctl.evaluate("val", timeout=20)
    assert status["state"] == "timeout", status
    assert status["avg_batch_seconds"] * 4 * 0.001 < 0.3
    assert status["timeout_seconds"] == pytest.approx(0.3)  # the floor, not the formula
    assert s.exp.control.state.value == "paused"


def test_timeout_floor_lets_a_short_pass_finish(wl, monkeypatch):
    """The same tiny formula with a generous floor: the pass is not stopped (compare
    test_timeout_from_the_formula, floor 0 -> stopped after one batch)."""
    monkeypatch.setenv("WEIGHTSLAB_EVAL_TIMEOUT_MULTIPLIER", "0.001")
    monkeypatch.setenv("WEIGHTSLAB_EVAL_TIMEOUT_MIN_SECONDS", "25")
    s = _setup(wl)
    status = s.ctl.evaluate("val", eval_fn="default", timeout=20)
    assert status["state"] == "done", status
    assert status["batches_done"] == status["batches_total"] == 4
    assert status["timeout_seconds"] == 25.0
    rows, _, _, _ = s.exp.history.arrays("eval_loss")
    assert len(rows) == 64  # every validation sample was evaluated


def test_failures_are_reported_and_restore_the_training_state(wl):
    s = _setup(wl)
    exp = s.exp

    @wl.eval_fn
    def broken(ctx):
        for _ in ctx.batches:
            ctx.model.eval()
            raise RuntimeError("boom")

    s.model.train()
    status = s.ctl.evaluate("val", timeout=20)
    assert status["state"] == "error" and "boom" in status["message"]
    assert exp.control.state.value == "running" and s.model.training
    assert exp.lock.holder() is None and not exp.lock.exempt_threads and not exp.history.markers

    # a loop that holds the main lock across its step boundary: the boundary gives the lock up
    # while the loop waits there, so the pass runs (no deadlock, no error)
    stop, errors = threading.Event(), []

    def hog():
        try:
            with wl.guard_training_context:
                while not stop.is_set():
                    for x, ids, y in s.loader:
                        _step(s, x, ids, y)
                        if stop.is_set():
                            break
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=hog, daemon=True)
    thread.start()
    try:
        wait_for(lambda: exp.step >= 2)
        ctl = EvaluationController(exp, deadlock_seconds=0.2)
        status = ctl.evaluate("val", eval_fn="default", timeout=20)
        assert status["state"] == "done", status
        assert exp.control.state.value == "running"
        resumed_from = exp.step
        wait_for(lambda: exp.step >= resumed_from + 2)  # the loop goes on
    finally:
        stop.set()
        thread.join(10)
    assert not errors and not thread.is_alive()


def test_split_package_keeps_the_public_names() -> None:
    import weightslab.evaluation as evaluation
    from weightslab.evaluation import context, controller, default, errors

    assert evaluation.EvaluationController is controller.EvaluationController
    assert evaluation.EvalContext is context.EvalContext and evaluation.make_batch is context.make_batch
    assert evaluation.default_evaluator is default.default_evaluator
    assert issubclass(evaluation.EvaluationBusy, RuntimeError) and evaluation.EvaluationError is errors.EvaluationError


def _hold_main_lock(exp, name):
    """Hold the experiment's main lock in a thread named ``name`` until the returned event is set."""
    held, release = threading.Event(), threading.Event()

    def hold():
        with exp.lock:
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold, name=name, daemon=True)
    thread.start()
    assert held.wait(5), "the holder never took the main lock"
    return release, thread


def test_a_lock_held_while_the_loop_waits_at_its_boundary_is_a_deadlock_reported_fast(wl):
    """The loop is blocked at its step boundary (paused) and someone else holds the main lock:
    waiting for the lock would wait forever, so the pass fails after ``deadlock_seconds``."""
    s = _setup(wl)
    exp = s.exp
    ctl = EvaluationController(exp, deadlock_seconds=0.3, lock_timeout=60)
    with _Loop(wl, s):
        wait_for(lambda: exp.step >= 2)
        wl.pause()
        wait_for(lambda: exp.control.waiting)
        release, holder = _hold_main_lock(exp, "stuck-holder")
        try:
            status = ctl.evaluate("val", eval_fn="default", timeout=20)
        finally:
            release.set()
            holder.join(5)
        assert status["state"] == "error", status
        assert "held by stuck-holder while the training loop waits at its step boundary" in status["message"]
        assert status["finished"] - status["started"] < 30  # the deadlock rule, not the 60 s lock timeout
        assert exp.control.state.value == "paused" and exp.lock.holder() is None
        assert not exp.lock.exempt_threads
        wl.resume()
    assert not exp.history.markers


def test_a_main_lock_held_too_long_fails_the_pass_after_the_lock_timeout(wl):
    s = _setup(wl)
    exp = s.exp
    ctl = EvaluationController(exp, deadlock_seconds=60, lock_timeout=0.3)
    release, holder = _hold_main_lock(exp, "slow-holder")
    try:
        status = ctl.evaluate("val", eval_fn="default", timeout=20)
        assert status["state"] == "error", status
        assert "the main lock was not acquired within 0.3s (held by slow-holder)" in status["message"]
    finally:
        release.set()
        holder.join(5)
    assert exp.lock.holder() is None and not exp.lock.exempt_threads
    assert ctl.evaluate("val", eval_fn="default", timeout=20)["state"] == "done"  # free lock: it runs


# -- survivors of the mutation smoke test ----------------------------------------------------
def test_progress_is_the_share_of_batches_done_while_running_and_after_a_cancel(wl):
    s = _setup(wl)
    first_done, seen = threading.Event(), []

    @wl.eval_fn
    def slow(ctx):
        for i, _ in enumerate(ctx.batches):
            seen.append(s.ctl.status()["progress"])  # inside batch i: i batches done
            if i == 1:
                first_done.set()
                _wait_until_stops(ctx)
        return {"score": 1.0}

    s.ctl.start("val")
    wait_for(first_done.is_set)
    running = s.ctl.status()
    assert running["state"] == "running" and running["batches_total"] == 4
    assert seen == [0.0, 0.25] and running["progress"] == 0.25
    s.ctl.cancel()
    status = s.ctl.wait(10)
    assert status["state"] == "cancelled" and status["batches_done"] == 2 and status["progress"] == 0.5


def _loader(wl, name, n=32, **kwargs):
    x, y, _, _ = noisy_digits(n)
    data = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    return wl.watch_or_edit(data, flag="data", loader_name=name, batch_size=16, **kwargs)


def test_the_default_split_is_the_first_evaluation_loader(wl):
    s = _setup(wl)  # "train" (training) and "val"
    _loader(wl, "test")
    status = s.ctl.evaluate(eval_fn="default", timeout=20)
    assert status["state"] == "done" and status["split"] == "val", status


def test_with_only_a_training_loader_the_default_split_is_that_loader(wl):
    wl.watch_or_edit(_model(), flag="model")
    _loader(wl, "train")
    ctl = EvaluationController(wl.get_experiment())
    status = ctl.evaluate(eval_fn="default", timeout=20)
    assert status["state"] == "done" and status["split"] == "train", status
    _loader(wl, "train_b", is_training=True)  # two training loaders, no evaluation one: ask which
    with pytest.raises(ValueError, match="split: no split given and no evaluation"):
        ctl.start(eval_fn="default")


def test_a_training_step_holding_the_lock_is_waited_for_not_reported_as_a_deadlock(wl):
    """The main lock is held while the loop is not blocked at its boundary (a long training step):
    the pass waits for it, however short ``deadlock_seconds`` is, and runs once it is released."""
    s = _setup(wl)
    exp = s.exp
    ctl = EvaluationController(exp, deadlock_seconds=0.0, lock_timeout=60, lock_poll=0.01)
    release, holder = _hold_main_lock(exp, "long-step")
    try:
        assert not exp.control.waiting
        ctl.start("val", eval_fn="default")
        # A window of about 100 lock polls: a deadlock verdict would end the pass within two.
        status = ctl.wait(1.0)
        assert status["state"] == "running", status
    finally:
        release.set()
        holder.join(5)
    status = ctl.wait(20)
    assert status["state"] == "done", status
    assert exp.lock.holder() is None and not exp.lock.exempt_threads


def test_an_evaluation_batch_size_must_be_a_positive_integer(wl):
    s = _setup(wl)
    for bad in (0, -1):
        with pytest.raises(ValueError, match=f"batch_size={bad}: expected a positive integer or None"):
            s.ctl.start("val", eval_fn="default", batch_size=bad)
    status = s.ctl.evaluate("val", eval_fn="default", batch_size=1, max_steps=3, timeout=20)
    assert status["state"] == "done" and status["batches_total"] == 3 and status["samples_done"] == 3


def test_a_function_is_picked_by_its_own_name_whatever_it_sorts_before(wl):
    """``eval_fn="accuracy"`` runs the function registered under that name (a name sorting before
    "default" is not the built-in evaluator); ``"default"`` runs the built-in one."""
    s = _setup(wl)

    @wl.eval_fn(name="accuracy")
    def accuracy(ctx):
        return {"hits": 1.0}

    status = s.ctl.evaluate("val", eval_fn="accuracy", timeout=20)
    assert status["state"] == "done" and status["eval_fn"] == "accuracy" and set(status["metrics"]) == {"eval_hits"}
    status = s.ctl.evaluate("val", eval_fn="default", timeout=20)
    assert status["state"] == "done" and set(status["metrics"]) == {"eval_loss", "eval_accuracy"}
