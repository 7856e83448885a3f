"""The test doubles of these tests implement the real contracts, so a renamed parameter or a
changed result shape fails here instead of hiding behind a double."""

from __future__ import annotations

from typing import Any

from grpc_testutil import FakeAgent, FakeCheckpoints, FakeEvaluation, HooksForTests, make_pm
from pydantic import TypeAdapter
from weightslab.checkpoints import CheckpointManager
from weightslab.contracts import (
    AgentAnswer,
    AgentHistoryEntry,
    AgentModels,
    AgentStatus,
    QueryAgent,
    conformance,
)
from weightslab.evaluation import EvaluationController


def test_fake_agent_implements_the_query_agent_protocol() -> None:
    agent = FakeAgent()
    assert conformance(agent, QueryAgent) == [] and isinstance(agent, QueryAgent)
    TypeAdapter(AgentAnswer).validate_python(agent.query("which?", preview=True))
    status = TypeAdapter(AgentStatus)
    for result in (agent.health(), agent.init(provider="p", api_key=None, model="m"), agent.change_model("m2"),
                   agent.reset()):
        status.validate_python(result)
    TypeAdapter(AgentModels).validate_python(agent.models())
    TypeAdapter(list[AgentHistoryEntry]).validate_python(agent.history(limit=5))


def test_fake_evaluation_and_checkpoints_match_the_real_classes() -> None:
    assert conformance(FakeEvaluation(), EvaluationController, only=("start", "status", "cancel")) == []
    checkpoints: Any = FakeCheckpoints.__new__(FakeCheckpoints)  # signatures only: no experiment needed
    assert conformance(checkpoints, CheckpointManager, only=("list", "save", "restore")) == []


def test_the_test_plugin_matches_the_hookspecs() -> None:
    pm = make_pm(HooksForTests())  # registration validates every hookimpl's argument names
    pm.check_pending()
