"""Opt-in: the example questions asked of a real model. Skipped unless a variable names an endpoint:

* ``WL_AGENT_TEST_OLLAMA=http://127.0.0.1:11434`` (``WL_AGENT_TEST_MODEL``, default ``llama3.2:3b``), or
* ``WL_AGENT_TEST_OPENROUTER_BASE_URL=https://openrouter.ai/api/v1`` with ``OPENROUTER_API_KEY``
  (``WL_AGENT_TEST_MODEL``, default the configured OpenRouter model).

Small local models are not always right; the test checks that each answer is a valid plan of the
expected kind that ran on the table, and prints the plans for a person to judge. A model on a CPU
is slow: raise ``WL_TEST_TIMEOUT`` (e.g. 600) for this run.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest
from weightslab.experiment import Experiment
from weightslab_agent.agent import QueryAgent
from weightslab_agent.agent_config import AgentConfig

OLLAMA = os.environ.get("WL_AGENT_TEST_OLLAMA", "")
CLOUD = os.environ.get("WL_AGENT_TEST_OPENROUTER_BASE_URL", "")
MODEL = os.environ.get("WL_AGENT_TEST_MODEL", "")

pytestmark = pytest.mark.skipif(not (OLLAMA or CLOUD), reason="set WL_AGENT_TEST_OLLAMA or "
                                "WL_AGENT_TEST_OPENROUTER_BASE_URL to ask a real model")

QUESTIONS = [("show the 20 training samples with the highest loss labelled 3", "select"),
             ("tag the top 5% by suspected_mislabel as review", "edit"),
             ("discard samples tagged blurry", "edit"),
             ("what is the mean loss per class?", "aggregate")]


def _agent() -> QueryAgent:
    if CLOUD:
        settings = AgentConfig(provider="openrouter", openrouter_base_url=CLOUD, openrouter_request_timeout=120,
                               **({"openrouter_model": MODEL} if MODEL else {}))
        return QueryAgent(settings, env_api_key=os.environ.get("OPENROUTER_API_KEY"))
    url = urlsplit(OLLAMA)
    settings = AgentConfig(ollama_host=f"{url.scheme}://{url.hostname}", ollama_port=url.port or 11434,
                           **({"ollama_model": MODEL} if MODEL else {}))
    return QueryAgent(settings, ollama_timeout=300)


@pytest.mark.parametrize(("question", "kind"), QUESTIONS)
def test_a_real_model_answers_the_examples(question: str, kind: str, experiment: Experiment) -> None:
    agent = _agent()
    assert agent.health()["available"], agent.health()["message"]
    answer = agent.query(question, experiment=experiment)
    print(f"\n{question!r} -> {answer['plan_text']}\n  {answer['answer']}")
    assert answer["kind"] == kind
    assert answer["applied"] is False
