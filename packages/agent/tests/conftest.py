"""Fixtures of the agent tests (helpers live in agent_testutil.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_testutil import KEY, LLMServer, make_experiment, ollama_server, openrouter_server
from weightslab.experiment import Experiment

# WL_TEST_TIMEOUT: applied by the repository's conftest.py (environment, then .env, then 30 s).


@pytest.fixture
def ollama() -> Iterator[LLMServer]:
    server = ollama_server()
    yield server
    server.stop()


@pytest.fixture
def openrouter() -> Iterator[LLMServer]:
    server = openrouter_server(KEY)
    yield server
    server.stop()


@pytest.fixture
def experiment(tmp_path: Path) -> Iterator[Experiment]:
    exp = make_experiment(tmp_path / "root")
    yield exp
    exp.shutdown()
