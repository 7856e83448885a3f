"""Every CLI server command, over a real connection, against an in-process experiment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pluggy
import pytest
from cli_testutil import (
    N_TRAIN,
    N_VAL,
    LineClient,
    base_environ,
    lock_held_elsewhere,
    make_experiment,
    read_audit,
)
from weightslab import _builtin, hookspecs
from weightslab.experiment import Experiment
from weightslab.hookspecs import hookimpl
from weightslab.hyperparams import HyperParameters
from weightslab_cli import plugin as cli_plugin
from weightslab_cli.commands import COMMANDS
from weightslab_cli.server import CliServer


@pytest.fixture
def client(experiment: Experiment, serve: Callable[..., CliServer], connect: Any) -> LineClient:
    return connect(serve(experiment).port)


def test_help_lists_every_command(client: LineClient) -> None:
    reply = client.cmd("help")
    assert set(reply["commands"]) == set(COMMANDS)
    expected = {"help", "status", "pause", "resume", "hp", "top", "query", "tag", "untag", "discard",
                "restore", "eval", "eval_status", "cancel_eval", "ask", "quit"}
    assert expected <= set(reply["commands"])
    assert client.cmd("help tag")["commands"]["tag"]["mutating"] is True
    assert not client.cmd("help nope")["ok"]


def test_status(client: LineClient) -> None:
    status = client.cmd("status")["status"]
    assert status["state"] == "running" and status["samples"] == N_TRAIN + N_VAL
    assert status["splits"] == {"train": N_TRAIN, "val": N_VAL}


def test_pause_resume_and_run_n_steps(client: LineClient, experiment: Experiment, tmp_path: Path) -> None:
    assert client.cmd("pause") == {"ok": True, "state": "paused"}
    assert client.cmd("status")["status"]["state"] == "paused"
    assert client.cmd("resume 3") == {"ok": True, "state": "running", "steps": 3}
    assert experiment.control.steps_left == 3
    for _ in range(3):
        experiment.step_end()
    assert client.cmd("status")["status"]["state"] == "paused"
    assert client.cmd("resume") == {"ok": True, "state": "running", "steps": None}
    for bad in ("resume 0", "resume -2", "resume x", "resume 1 2"):
        assert not client.cmd(bad)["ok"], bad
    actions = [r["action"] for r in read_audit(tmp_path / "run")]
    assert actions[:3] == ["pause", "resume", "resume"]
    assert read_audit(tmp_path / "run")[0]["before"] == "running"


def test_hyperparameters(experiment: Experiment, serve: Callable[..., CliServer], connect: Any,
                         tmp_path: Path) -> None:
    hp = HyperParameters({"lr": 0.1, "batch_size": 8, "model": {"depth": 3}}, yaml_path=None)
    experiment.register_hyperparameters(hp)
    client = connect(serve(experiment).port)
    listed = client.cmd("hp")["hyperparameters"]
    assert listed["applied"] == {"lr": 0.1, "batch_size": 8, "model.depth": 3}
    assert client.cmd("hp list")["hyperparameters"] == listed
    assert client.cmd("hp get lr") == {"ok": True, "key": "lr", "value": 0.1}
    reply = client.cmd("hp set lr 0.01")
    assert reply["ok"] and reply["requested"] == 0.01 and reply["applied"] == 0.1
    assert client.cmd("hp get lr")["pending"] == 0.01
    assert client.cmd("hp set model.depth 5")["requested"] == 5
    experiment.step_boundary()  # the loop applies pending edits at the next step
    assert client.cmd("hp get lr") == {"ok": True, "key": "lr", "value": 0.01}
    assert "expected an integer" in client.cmd("hp set batch_size 2.5")["error"]
    assert "unknown hyperparameter 'nope'" in client.cmd("hp set nope 1")["error"]
    assert "unknown hyperparameter" in client.cmd("hp get nope")["error"]
    assert "usage" in client.cmd("hp frobnicate")["error"]
    audit = [r for r in read_audit(tmp_path / "run") if r["action"] == "set_hyperparameter"]
    assert [r["outcome"] for r in audit] == ["ok", "ok", "error", "error"]
    assert audit[0]["before"] == 0.1 and audit[0]["after"] == 0.01


def test_hp_without_hyperparameters(client: LineClient) -> None:
    assert client.cmd("hp")["hyperparameters"] == {"applied": {}, "pending": {}}
    assert "no hyperparameters are watched" in client.cmd("hp set lr 1")["error"]


def test_top(client: LineClient) -> None:
    reply = client.cmd("top loss 3 --split train")
    assert reply["total"] == 3 and [r["sample_id"] for r in reply["rows"]] == ["39", "38", "37"]
    assert all(r["split"] == "train" for r in reply["rows"])
    assert reply["rows"][0]["loss"] == pytest.approx(3.9)
    smallest = client.cmd("top loss 2 --split train --smallest")
    assert [r["sample_id"] for r in smallest["rows"]] == ["0", "1"]
    assert len(client.cmd("top loss")["rows"]) == 10
    assert "unknown column 'nope'" in client.cmd("top nope 3")["error"]
    assert not client.cmd("top loss zero")["ok"]
    assert "unknown option --bogus" in client.cmd("top loss 3 --bogus")["error"]
    assert not client.cmd("top")["ok"]


def test_query(client: LineClient) -> None:
    reply = client.cmd('query loss > 2.95 and split == "train" sort by loss desc limit 4')
    assert reply["total"] == 10 and len(reply["rows"]) == 4
    assert [r["sample_id"] for r in reply["rows"]] == ["39", "38", "37", "36"]
    row = reply["rows"][0]
    assert {"sample_id", "split", "discarded", "label", "loss", "tags"} <= set(row)
    grouped = client.cmd("query split == \"train\" group by label")
    assert grouped["total"] == N_TRAIN and grouped["total_groups"] == 3
    assert sum(g["count"] for g in grouped["groups"]) == N_TRAIN
    assert "usage" in client.cmd("query")["error"]
    assert client.cmd("query loss > 100")["total"] == 0


def test_tag_untag_by_ids_and_query(client: LineClient, experiment: Experiment, tmp_path: Path) -> None:
    reply = client.cmd("tag noisy 1,2 3 --split train")
    assert reply["ok"] and reply["matched"] == 3 and reply["changed"] == 3
    assert client.cmd("tag noisy 1 --split train")["changed"] == 0  # idempotent
    reply = client.cmd('tag high --query loss > 3.5 and split == "train"')
    assert reply["matched"] == 4
    assert client.cmd('tag quoted --query "loss > 3.5 and split == \\"train\\""')["matched"] == 4
    assert client.args("tag", "viaargs", "--query", "loss > 3.5")["matched"] == 4
    assert client.cmd("query has:high")["total"] == 4
    assert client.cmd("untag high --query has:high")["changed"] == 4
    assert client.cmd("query has:high")["total"] == 0
    assert client.cmd("tag quality=blurry 5 --split val")["action"] == "set_category"
    assert client.cmd('query tag:quality == "blurry"')["total"] == 1
    assert client.cmd("untag quality= 5 --split val")["changed"] == 1
    frame = experiment.frame()
    noisy = frame.tags["noisy"]
    assert sorted(frame.sample_id[noisy & (frame.split == "train")].tolist()) == ["1", "2", "3"]
    for bad in ("tag", "tag noisy", "tag noisy 1 --query loss > 1", "tag noisy --query", "tag a=b=c"):
        assert not client.cmd(bad)["ok"], bad
    assert "unknown sample ids" in client.cmd("tag noisy 999")["error"]
    audit = [r for r in read_audit(tmp_path / "run") if r["action"] == "edit_samples"]
    ok = [r for r in audit if r["params"].get("action") == "tag" and r["outcome"] == "ok"]
    assert ok[0]["params"]["ids"] == ["1", "2", "3"] and ok[0]["params"]["ids_count"] == 3
    assert ok[0]["caller"]["transport"] == "cli" and ok[0]["result"] == {"matched": 3, "changed": 3}
    assert any(r["params"].get("query") == 'loss > 3.5 and split == "train"' for r in ok)
    assert any(r["params"].get("action") == "set_category" for r in audit)
    assert any(r["outcome"] == "error" for r in audit)


def test_discard_restore(client: LineClient, experiment: Experiment, tmp_path: Path) -> None:
    reply = client.cmd('discard --query loss > 3.5 and split == "train"')
    assert reply["matched"] == 4 and reply["changed"] == 4
    assert client.cmd("status")["status"]["discarded"] == 4
    assert client.cmd("query discarded")["total"] == 4
    assert int(experiment.table.discarded[: experiment.table.n].sum()) == 4
    assert client.cmd("restore 36 37 --split train")["changed"] == 2
    assert client.cmd("restore --query discarded")["changed"] == 2
    assert client.cmd("status")["status"]["discarded"] == 0
    assert not client.cmd("discard")["ok"]
    actions = [(r["action"], r["params"].get("action") or r["params"].get("command"), r["outcome"])
               for r in read_audit(tmp_path / "run")]
    assert actions == [("edit_samples", "discard", "ok"), ("edit_samples", "restore", "ok"),
                       ("edit_samples", "restore", "ok"), ("edit_samples", "discard", "error")]


def test_eval_not_available(experiment: Experiment, client: LineClient) -> None:
    experiment.evaluation = None  # e.g. a custom experiment without an evaluation controller
    for command in ("eval val", "eval_status", "cancel_eval"):
        assert client.cmd(command) == {"ok": False, "error": "evaluation not available"}


def test_eval_of_an_unknown_split_names_it(client: LineClient) -> None:
    reply = client.cmd("eval val")
    assert reply["ok"] is False and "split='val'" in reply["error"]


class FakeEvaluation:
    """Stands in for ``EvaluationController`` with its signatures (checked below)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def start(self, split: str | None = None, *, tags: Any = None, max_steps: int | None = None,
              resume_after: bool | None = None, eval_fn: str | None = None, include_discarded: bool = False,
              batch_size: int | None = None, model: str | None = None) -> dict[str, Any]:
        self.calls.append(("start", (split, tags, max_steps)))
        if split == "nope":
            raise ValueError("unknown split 'nope'")
        return {"state": "running", "split": split}

    def status(self) -> dict[str, Any]:
        return {"state": "running", "progress": 0.5}

    def cancel(self) -> dict[str, Any]:
        self.calls.append(("cancel", None))
        return {"state": "cancelled"}


def test_fake_evaluation_has_the_controller_signatures() -> None:
    from weightslab.contracts import conformance
    from weightslab.evaluation import EvaluationController

    assert conformance(FakeEvaluation(), EvaluationController, only=("start", "status", "cancel")) == []


def test_eval_through_the_evaluation_controller(experiment: Experiment, serve: Callable[..., CliServer],
                                                connect: Any, tmp_path: Path) -> None:
    evaluation = FakeEvaluation()
    experiment.evaluation = evaluation
    client = connect(serve(experiment).port)
    assert client.cmd("eval val --tags a,b --steps 4")["evaluation"] == {"state": "running", "split": "val"}
    assert evaluation.calls[0] == ("start", ("val", ["a", "b"], 4))
    assert client.cmd("eval_status")["evaluation"]["progress"] == 0.5
    assert client.cmd("cancel_eval")["evaluation"] == {"state": "cancelled"}
    assert client.cmd("eval nope")["error"] == "unknown split 'nope'"
    assert not client.cmd("eval")["ok"] and not client.cmd("eval val --steps 0")["ok"]
    actions = [(r["action"], r["outcome"]) for r in read_audit(tmp_path / "run")]
    assert ("start_evaluation", "ok") in actions and ("cancel_evaluation", "ok") in actions
    assert ("start_evaluation", "error") in actions


def test_ask_without_agent(tmp_path: Path, serve: Callable[..., CliServer], connect: Any) -> None:
    pm = pluggy.PluginManager("weightslab")  # no agent plugin, even where weightslab-agent is installed
    pm.add_hookspecs(hookspecs)
    pm.register(_builtin, name="core")
    pm.register(cli_plugin, name="cli")
    exp = make_experiment(tmp_path / "run", base_environ(), pm=pm)
    try:
        client = connect(serve(exp).port)
        reply = client.cmd("ask which samples are mislabelled?")
        assert reply["ok"] is False and "no query agent is installed" in reply["error"]
        assert "usage" in client.cmd("ask")["error"]
    finally:
        exp.shutdown()


class FakeAgent:
    """A :class:`weightslab.contracts.QueryAgent` (checked below) that records its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def query(self, question: str, *, preview: bool = False, experiment: Any = None) -> dict[str, Any]:
        self.calls += 1
        return {"plan": {"filter": "loss > 3"}, "question": question, "has_experiment": experiment is not None,
                "applied": not preview, "calls": self.calls}

    def health(self) -> dict[str, Any]:
        return {"available": True, "initialized": True, "provider": "fake", "model": "m"}

    def init(self, provider: str | None = None, api_key: str | None = None, model: str | None = None) -> dict:
        return self.health()

    def models(self) -> dict[str, Any]:
        return {"current": "m", "models": [{"id": "m"}]}

    def change_model(self, model: str) -> dict[str, Any]:
        return self.health()

    def reset(self) -> dict[str, Any]:
        return self.health()

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        return []


def test_fake_agent_implements_the_query_agent_protocol() -> None:
    from pydantic import TypeAdapter
    from weightslab.contracts import AgentAnswer, QueryAgent, conformance

    agent = FakeAgent()
    assert conformance(agent, QueryAgent) == []
    TypeAdapter(AgentAnswer).validate_python(agent.query("q", preview=True))


class AgentPlugin:
    @hookimpl
    def weightslab_query_agent(self, config: Any) -> Any:
        return FakeAgent()


def test_ask_with_an_agent_plugin(tmp_path: Path, serve: Callable[..., CliServer], connect: Any) -> None:
    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    pm.register(_builtin, name="core")
    pm.register(cli_plugin, name="cli")
    pm.register(AgentPlugin(), name="agent")
    exp = make_experiment(tmp_path / "run", base_environ(), pm=pm)
    try:
        client = connect(serve(exp).port)
        reply = client.cmd("ask what is noisy?")
        assert reply["ok"] and reply["answer"] == {"plan": {"filter": "loss > 3"}, "question": "what is noisy?",
                                                   "has_experiment": True, "applied": True, "calls": 1}
        preview = client.cmd("ask --preview what is noisy?")
        assert preview["preview"] is True and preview["answer"]["applied"] is False
        assert preview["answer"]["calls"] == 2  # one agent per experiment, kept between questions
        audit = read_audit(tmp_path / "run")
        assert [r["action"] for r in audit] == ["agent_query", "agent_query"]
        assert audit[0]["params"] == {"question": "what is noisy?", "preview": False}
        assert audit[0]["result"] == {"applied": True, "matched": 0, "plan": {"filter": "loss > 3"}}
    finally:
        exp.shutdown()


def test_quit_closes_the_connection(client: LineClient) -> None:
    assert client.cmd("quit") == {"ok": True, "bye": True}
    assert client.closed()


def test_lock_timeout_gives_an_error_not_a_hang(tmp_path: Path, serve: Callable[..., CliServer],
                                                connect: Any) -> None:
    """WL_LOCK_TIMEOUT_SECONDS bounds the wait for the main lock; reads never wait for it."""
    import time

    exp = make_experiment(tmp_path / "run", base_environ(WL_LOCK_TIMEOUT_SECONDS="0.3"))
    client = connect(serve(exp).port)
    try:
        with lock_held_elsewhere(exp, seconds=10):
            started = time.monotonic()
            reply = client.cmd("tag busy 1 --split train")
            assert reply["ok"] is False and "experiment busy" in reply["error"] and "0.3s" in reply["error"]
            assert time.monotonic() - started < 5
            assert client.cmd("status")["ok"]  # a read uses the table lock only
    finally:
        exp.shutdown()


def test_numpy_values_and_nan_are_json_safe(experiment: Experiment, client: LineClient) -> None:
    experiment.record("score", np.array([np.nan, 1.0]), ["0", "1"], split="val")
    rows = client.cmd('query split == "val" sort by sample_id limit 2')["rows"]
    assert rows[0]["score"] is None and rows[1]["score"] == 1.0
