"""Shared fixtures: real dev PKIs on disk, auth-only configs, real gRPC servers on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent import futures
from typing import Any

import grpc
import pluggy
import pytest
from grpc_health.v1 import health, health_pb2_grpc
from weightslab import _builtin, hookspecs
from weightslab.config import Config, resolve
from weightslab_auth import plugin
from weightslab_auth.pki import PKIPaths, create_dev_pki
from weightslab_auth.settings import AuthSettings
from weightslab_auth.tokens import caller_identity

SERVICE = "wltest.Echo"

# WL_TEST_TIMEOUT: applied by the repository's conftest.py (environment, then .env, then 30 s).


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKIPaths:
    return create_dev_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> PKIPaths:
    """A second, unrelated CA (its client certificate must be rejected)."""
    return create_dev_pki(tmp_path_factory.mktemp("other-pki"))


@pytest.fixture
def make_config() -> Callable[..., Config]:
    """Auth settings only, no .env lookup: ``make_config(config={...}, GRPC_X='...')``."""

    def make(config: Mapping[str, Any] | None = None, **environ: str) -> Config:
        return resolve([AuthSettings], config=config, environ=environ, env_file=None)

    return make


@pytest.fixture
def plugin_manager() -> pluggy.PluginManager:
    """Core + this plugin only, so other packages' state cannot affect these tests."""
    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    pm.register(_builtin, name="core")
    pm.register(plugin, name="auth")
    return pm


@pytest.fixture
def auth_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture the ``weightslab`` hierarchy even when it does not propagate to the root logger."""
    logger = logging.getLogger("weightslab")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="weightslab")
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


def _echo_handler() -> grpc.GenericRpcHandler:
    def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    def stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield from (request, request, request)

    def whoami(request: bytes, context: grpc.ServicerContext) -> bytes:
        return json.dumps(caller_identity(context)).encode()

    return grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
        "Whoami": grpc.unary_unary_rpc_method_handler(whoami),
    })


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Start a real server (health + echo) on 127.0.0.1:0; returns its target."""
    servers: list[grpc.Server] = []

    def start(credentials: grpc.ServerCredentials | None, interceptors: Sequence[Any] = ()) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=list(interceptors))
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
        server.add_generic_rpc_handlers((_echo_handler(),))
        if credentials is None:
            port = server.add_insecure_port("127.0.0.1:0")
        else:
            port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(None)
