from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from watchdog_testutil import (
    RecordingHandler,
    ServerHandle,
    Servicer,
    make_experiment,
    watchdog_config,
)
from weightslab_watchdog.inflight import InflightTracker
from weightslab_watchdog.service import get_inflight_tracker


@pytest.fixture
def logs() -> Iterator[RecordingHandler]:
    """Records of the ``weightslab.watchdog`` loggers (independent of propagation settings)."""
    logger = logging.getLogger("weightslab.watchdog")
    handler = RecordingHandler()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


class GrpcEnv:
    def __init__(self, **env: object) -> None:
        self.config = watchdog_config(**env)
        self.settings = self.config["watchdog"]
        self.experiment = make_experiment(self.config)
        self.tracker: InflightTracker = get_inflight_tracker(self.experiment)
        self.servicer = Servicer(self.experiment.lock)
        self.handle = ServerHandle(self.servicer, [self.tracker])
        self.experiment.services["grpc"] = self.handle

    def close(self) -> None:
        self.servicer.release.set()
        self.servicer.abort_spin.set()
        self.handle.stop()


@pytest.fixture
def grpc_env() -> Iterator[type[GrpcEnv]]:
    """Factory of real servers (settings from keyword variables); all closed at teardown."""
    made: list[GrpcEnv] = []

    class Factory(GrpcEnv):
        def __init__(self, **env: object) -> None:
            super().__init__(**env)
            made.append(self)

    try:
        yield Factory
    finally:
        for env in made:
            env.close()
