"""Fixtures of the grpc_server tests (helpers live in grpc_testutil.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from grpc_testutil import Env
from weightslab_auth.pki import PKIPaths, create_dev_pki, load_token
from weightslab_grpc_server._generated import experiment_pb2_grpc as pb_grpc

# WL_TEST_TIMEOUT: applied by the repository's conftest.py (environment, then .env, then 30 s).


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKIPaths:
    return create_dev_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def token(pki: PKIPaths) -> str:
    return load_token(pki.directory)


@pytest.fixture
def make_env(tmp_path_factory: pytest.TempPathFactory, pki: PKIPaths, token: str) -> Iterator[Callable[..., Env]]:
    made: list[Env] = []

    def make(**kwargs: Any) -> Env:
        env = Env(tmp_path_factory.mktemp("exp"), pki, token, **kwargs)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory: pytest.TempPathFactory, pki: PKIPaths, token: str) -> Iterator[Env]:
    """A read-mostly server shared by a module's tests."""
    env = Env(tmp_path_factory.mktemp("shared"), pki, token)
    try:
        yield env
    finally:
        env.close()


@pytest.fixture
def stub(shared_env: Env) -> pb_grpc.ExperimentServiceStub:
    return shared_env.stub()


@pytest.fixture
def grpc_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    logger = logging.getLogger("weightslab")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="weightslab")
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


