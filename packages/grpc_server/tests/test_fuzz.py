"""Fuzz every RPC with random bytes and random field values: the server always answers with a
client-error status (never INTERNAL/UNKNOWN), never crashes, and stays SERVING."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.descriptor import FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_testutil import TIMEOUT, Env, pb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from weightslab_grpc_server.servicer import SERVICE_DESCRIPTOR, SERVICE_NAME

ALLOWED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
           grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.NOT_FOUND}
METHODS = [m for m in SERVICE_DESCRIPTOR.methods]
WORDS = ["loss", "label", "split", "train", "test", "hard", "quality", "blurry", "1", "t3", "lr", "sample_id",
         "tag:hard", "tag:quality", "prediction", "suspected_mislabel", "media", "x=y", "", "\u00e9", "0"]
QUERY_TOKENS = ["loss", "label", ">", "<", "==", "!=", "2", "-1.5e308", '"train"', "and", "or", "not", "(", ")",
                "has:hard", "tag:quality", "=", "sort", "by", "desc", "limit", "offset", "10", "top", "group",
                ":", "count", "between", "in", "[", "]", ",", "contains", "is", "null", "`x`", "1e999", "split"]
SPEC_JSON = [json.dumps(s) for s in (
    {"filter": {"op": ">", "column": "loss", "value": 0.5}},
    {"filter": {"op": "not", "filter": {"op": "has_tag", "tag": "hard"}}, "top_k": {"column": "loss", "k": 3}},
    {"filter": {"op": "in", "column": "label", "values": [1, "2", True]}},
    {"filter": {"op": "between", "column": "split", "low": 1, "high": 0}},
    {"sort": [{"column": "nope"}]}, {"page": {"limit": -1}}, {"group": {"by": ["label"]}},
    {"filter": {"op": "category", "tag": "quality", "value": "blurry"}},
)] + ["{}", "[]", "null", "1", '"x"', "{" * 50 + "}" * 50, '{"filter": ' * 300 + "1" + "}" * 300]


def _text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(WORDS), st.text(max_size=40),
                     st.lists(st.sampled_from(QUERY_TOKENS), max_size=12).map(" ".join), st.sampled_from(SPEC_JSON))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return _text()
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=40)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 1e308]))
    if t == FieldDescriptor.TYPE_ENUM:
        return st.integers(-3, 12)
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.one_of(st.integers(0, 20), st.integers(0, 2**32 - 1))
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.one_of(st.integers(0, 20), st.integers(0, 2**64 - 1))
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return st.one_of(st.integers(-3, 20), st.integers(-(2**31), 2**31 - 1))
    return st.one_of(st.integers(-3, 20), st.integers(-(2**63), 2**63 - 1))


def _fill(draw: Any, message: Any, depth: int = 0) -> None:
    for field in message.DESCRIPTOR.fields:
        if not draw(st.booleans()):
            continue
        repeated = bool(getattr(field, "is_repeated", False))
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key in draw(st.lists(_text(), max_size=3)):
                if value_field.message_type is None:
                    getattr(message, field.name)[key] = draw(_scalar(value_field))
            continue
        if field.message_type is not None:
            if depth >= 3:
                continue
            if repeated:
                for _ in range(draw(st.integers(0, 3))):
                    _fill(draw, getattr(message, field.name).add(), depth + 1)
            else:
                sub = getattr(message, field.name)
                sub.SetInParent()
                _fill(draw, sub, depth + 1)
            continue
        if repeated:
            getattr(message, field.name).extend(draw(st.lists(_scalar(field), max_size=4)))
        else:
            setattr(message, field.name, draw(_scalar(field)))


@st.composite
def random_request(draw: Any) -> tuple[Any, Any]:
    method = draw(st.sampled_from(METHODS))
    request = getattr(pb, method.input_type.name)()
    _fill(draw, request)
    return method, request


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory: pytest.TempPathFactory, pki, token) -> Iterator[Env]:
    from weightslab.data import WatchedLoader

    env = Env(tmp_path_factory.mktemp("fuzz"), pki, token, GRPC_WATCHDOG_STUCK_SECONDS=2)
    x = np.zeros((4, 3), dtype=np.float32)
    env.experiment.loaders["media"] = WatchedLoader(env.experiment, (x, np.zeros(4)), loader_name="media")
    try:
        yield env
    finally:
        env.close()


def _raw_callables(env: Env) -> dict[str, Any]:
    channel = env.channel()
    out = {}
    for method in METHODS:
        path = f"/{SERVICE_NAME}/{method.name}"
        kind = channel.unary_stream if method.server_streaming else channel.unary_unary
        out[method.name] = kind(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    return out


def _invoke(call: Any, request: Any, streaming: bool) -> None:
    try:
        if streaming:
            for _ in call(request, timeout=TIMEOUT):
                pass
        else:
            call(request, timeout=TIMEOUT)
    except grpc.RpcError as err:
        assert err.code() in ALLOWED, (err.code(), err.details())


def _assert_serving(env: Env) -> None:
    health = health_pb2_grpc.HealthStub(env.channel())
    for service in ("", SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert env.stub().GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT).samples >= 120


def test_fuzz_random_bytes(fuzz_env: Env) -> None:
    calls = _raw_callables(fuzz_env)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(method=st.sampled_from(METHODS), payload=st.binary(max_size=200))
    def run(method: Any, payload: bytes) -> None:
        _invoke(calls[method.name], payload, method.server_streaming)

    run()
    _assert_serving(fuzz_env)


def test_fuzz_random_fields(fuzz_env: Env) -> None:
    stub = fuzz_env.stub()

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(random_request())
    def run(item: tuple[Any, Any]) -> None:
        method, request = item
        _invoke(getattr(stub, method.name), request, method.server_streaming)

    run()
    _assert_serving(fuzz_env)
