"""The stand-ins of these tests implement the contracts the watchdog relies on."""

from __future__ import annotations

from typing import Any

import pytest
from watchdog_testutil import MarkerStore, ServerHandle
from weightslab.contracts import ServiceHandle, conformance
from weightslab.store import SampleStore


def test_server_handle_is_a_service_handle_like_the_real_grpc_one() -> None:
    handle: Any = ServerHandle.__new__(ServerHandle)  # signatures only: no server started
    assert conformance(handle, ServiceHandle) == [] and isinstance(handle, ServiceHandle)
    grpc_server = pytest.importorskip("weightslab_grpc_server.server")
    # The real handle's stop() takes an optional grace; restart() is what the watchdog calls.
    assert conformance(handle, grpc_server.GrpcServerHandle, only=("restart",)) == []


def test_marker_store_flushes_like_a_sample_store() -> None:
    assert conformance(MarkerStore(), SampleStore, only=("flush",)) == []
