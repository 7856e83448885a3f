"""The gRPC-Web framing the probe, tests and benchmarks use, and the plan's URL and origin."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from weightslab_studio import grpcweb
from weightslab_studio.launcher import make_plan


def test_frames_and_trailers_round_trip() -> None:
    body = grpcweb.frame(b"abc") + grpcweb.frame(b"") + bytes([grpcweb.TRAILER_FLAG]) \
        + struct.pack(">I", 38) + b"grpc-status: 7\r\ngrpc-message: denied\r\n"
    messages, trailers = grpcweb.parse_frames(body)
    assert messages == [b"abc", b""]
    assert trailers == {"grpc-status": "7", "grpc-message": "denied"}


def test_a_truncated_frame_is_an_error() -> None:
    with pytest.raises(ValueError, match="truncated gRPC-Web frame: 2 of 5 bytes"):
        grpcweb.parse_frames(b"\x00" + struct.pack(">I", 5) + b"ab")


def test_the_url_carries_the_token_in_the_fragment_only(environ: dict[str, str], token: str) -> None:
    plan = make_plan(environ=environ, token="a+b/c=d&e")
    assert plan.url == "https://localhost:8080/#token=a%2Bb%2Fc%3Dd%26e"
    assert plan.origin == "https://localhost:8080"
    assert make_plan(environ=environ).url == f"https://localhost:8080/#token={token}"
    assert make_plan(environ={**environ, "ENVOY_PORT": "443"}).origin == "https://localhost"


def test_without_any_token_the_url_has_no_fragment(environ: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in environ.items() if k != "GRPC_AUTH_TOKEN"}
    plan = make_plan(environ={**env, "GRPC_TLS_CERT_DIR": str(tmp_path)})
    assert plan.token is None and plan.url == "https://localhost:8080/"


def test_backend_tls_off_means_a_plaintext_upstream(environ: dict[str, str]) -> None:
    assert make_plan(environ=environ).upstream_tls is not None
    assert make_plan(environ={**environ, "GRPC_TLS_ENABLED": "0"}).upstream_tls is None
