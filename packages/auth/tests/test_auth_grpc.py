"""Real gRPC servers on 127.0.0.1 with the hook's credentials and the token interceptor."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from weightslab.auth_failures import FailureReport
from weightslab.config import fingerprint
from weightslab.settings import load_config
from weightslab_auth import plugin
from weightslab_auth.client import client_channel_credentials, secure_channel, token_metadata
from weightslab_auth.pki import PKIPaths, load_token
from weightslab_auth.settings import configured_tokens
from weightslab_auth.tokens import TokenAuthInterceptor

TIMEOUT = 10
TOKEN_A = "token-a-0123456789abcdef"
TOKEN_B = "token-b-0123456789abcdef"
TOKEN_C = "token-c-0123456789abcdef"


def _health(channel: grpc.Channel, metadata: Any = None) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT, metadata=metadata)
    return int(reply.status)


def _unary(channel: grpc.Channel, metadata: Any = None, method: str = "Unary") -> bytes:
    return channel.unary_unary(f"/wltest.Echo/{method}")(b"ping", timeout=TIMEOUT, metadata=metadata)


def _stream(channel: grpc.Channel, metadata: Any = None) -> list[bytes]:
    return list(channel.unary_stream("/wltest.Echo/Stream")(b"ping", timeout=TIMEOUT, metadata=metadata))


def _mtls_channel(target: str, pki: PKIPaths, client: PKIPaths | None = None) -> grpc.Channel:
    client = client or pki
    creds = client_channel_credentials(pki.ca_cert, client.envoy_client_cert, client.envoy_client_key)
    return grpc.secure_channel(target, creds)


# --- TLS / mTLS handshake -------------------------------------------------------------------


@pytest.fixture
def mtls_target(pki: PKIPaths, make_config: Callable[..., Any], serve: Callable[..., str]) -> str:
    config = make_config(GRPC_TLS_CERT_DIR=str(pki.directory))
    return serve(plugin.weightslab_grpc_server_credentials(config))


def test_mtls_rejects_client_without_certificate(mtls_target: str, pki: PKIPaths) -> None:
    with grpc.secure_channel(mtls_target, client_channel_credentials(pki.ca_cert)) as channel:
        with pytest.raises(grpc.RpcError) as err:
            _health(channel)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mtls_rejects_certificate_from_another_ca(mtls_target: str, pki: PKIPaths, other_pki: PKIPaths) -> None:
    with _mtls_channel(mtls_target, pki, client=other_pki) as channel:
        with pytest.raises(grpc.RpcError) as err:
            _unary(channel)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mtls_accepts_the_right_client_certificate(mtls_target: str, pki: PKIPaths) -> None:
    with _mtls_channel(mtls_target, pki) as channel:
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
        assert _unary(channel) == b"ping"
        assert _stream(channel) == [b"ping"] * 3


def test_client_rejects_server_from_another_ca(mtls_target: str, pki: PKIPaths, other_pki: PKIPaths) -> None:
    creds = client_channel_credentials(other_pki.ca_cert, pki.envoy_client_cert, pki.envoy_client_key)
    with grpc.secure_channel(mtls_target, creds) as channel:
        with pytest.raises(grpc.RpcError) as err:
            _unary(channel)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_without_client_auth_needs_no_client_certificate(
        pki: PKIPaths, make_config: Callable[..., Any], serve: Callable[..., str]) -> None:
    config = make_config(GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_TLS_REQUIRE_CLIENT_AUTH="0")
    target = serve(plugin.weightslab_grpc_server_credentials(config))
    with grpc.secure_channel(target, client_channel_credentials(pki.ca_cert)) as channel:
        assert _unary(channel) == b"ping"


def test_client_identity_from_certificate(mtls_target: str, pki: PKIPaths) -> None:
    with _mtls_channel(mtls_target, pki) as channel:
        identity = json.loads(_unary(channel, token_metadata(TOKEN_A), method="Whoami"))
    assert identity["client_common_name"] == "envoy-client"
    assert "CN=envoy-client" in (identity["client_subject"] or "")
    assert identity["token_fingerprint"] == fingerprint(TOKEN_A)
    assert identity["peer"].startswith("ipv4:127.0.0.1:")


# --- tokens ----------------------------------------------------------------------------------


@pytest.fixture
def token_server(pki: PKIPaths, plugin_manager: Any, tmp_path: Any, serve: Callable[..., str]) -> dict[str, Any]:
    """Through the real load_config + hooks: GRPC_AUTH_TOKEN=A, GRPC_AUTH_TOKENS=B,C; mTLS on."""
    environ = {"GRPC_TLS_CERT_DIR": str(pki.directory), "GRPC_AUTH_TOKEN": TOKEN_A,
               "GRPC_AUTH_TOKENS": f"{TOKEN_B}, {TOKEN_C}"}
    config = load_config(environ=environ, cwd=tmp_path, pm=plugin_manager)
    credentials = plugin_manager.hook.weightslab_grpc_server_credentials(config=config)
    interceptors = [i for result in plugin_manager.hook.weightslab_grpc_interceptors(
        config=config, experiment=None) for i in result]
    assert [type(i) for i in interceptors] == [TokenAuthInterceptor]
    failures: list[FailureReport] = []
    interceptors[0].add_auth_failure_listener(failures.append)
    return {"target": serve(credentials, interceptors), "failures": failures, "interceptor": interceptors[0]}


@pytest.mark.parametrize("metadata", [None, token_metadata("wrong-token-0123456789")], ids=["none", "wrong"])
def test_unauthenticated_on_unary_and_stream(token_server: dict[str, Any], pki: PKIPaths, metadata: Any) -> None:
    with _mtls_channel(token_server["target"], pki) as channel:
        with pytest.raises(grpc.RpcError) as unary_err:
            _unary(channel, metadata)
        with pytest.raises(grpc.RpcError) as stream_err:
            _stream(channel, metadata)
    assert unary_err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert stream_err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    reason = "no token" if metadata is None else "invalid token"
    # The first failure of a host is reported at once; the next ones are counted (rate limit)...
    immediate = token_server["failures"]
    assert [(r.method, r.reason, r.failures, r.summary) for r in immediate] == [
        ("/wltest.Echo/Unary", reason, 1, False)]
    token_server["interceptor"].stop()  # ...and reported as one summary when the interval ends
    summary = token_server["failures"][1:]
    assert [(r.reason, r.failures, r.summary, r.methods) for r in summary] == [
        (reason, 1, True, {"/wltest.Echo/Stream": 1})]
    assert all(r.peer.startswith("ipv4:127.0.0.1:") and r.host == "ipv4:127.0.0.1"
               for r in token_server["failures"])


@pytest.mark.parametrize("token", [TOKEN_A, TOKEN_B, TOKEN_C])
def test_each_rotated_token_is_accepted(token_server: dict[str, Any], pki: PKIPaths, token: str) -> None:
    with _mtls_channel(token_server["target"], pki) as channel:
        assert _unary(channel, token_metadata(token)) == b"ping"
        assert _stream(channel, token_metadata(token)) == [b"ping"] * 3
    assert token_server["failures"] == []


@pytest.mark.parametrize("header", ["authorization", "x-api-key", "x-grpc-auth-token"])
def test_each_header_form_is_accepted(token_server: dict[str, Any], pki: PKIPaths, header: str) -> None:
    with _mtls_channel(token_server["target"], pki) as channel:
        assert _unary(channel, token_metadata(TOKEN_B, header)) == b"ping"
        assert _stream(channel, token_metadata(TOKEN_B, header)) == [b"ping"] * 3


def test_bearer_scheme_is_case_insensitive_and_other_schemes_fail(token_server: dict[str, Any],
                                                                   pki: PKIPaths) -> None:
    with _mtls_channel(token_server["target"], pki) as channel:
        assert _unary(channel, (("authorization", f"bearer {TOKEN_A}"),)) == b"ping"
        with pytest.raises(grpc.RpcError) as err:
            _unary(channel, (("authorization", f"Basic {TOKEN_A}"),))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_health_is_public_unknown_methods_are_not(token_server: dict[str, Any], pki: PKIPaths) -> None:
    with _mtls_channel(token_server["target"], pki) as channel:
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as err:
            _unary(channel, method="DoesNotExist")
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            _unary(channel, token_metadata(TOKEN_A), method="DoesNotExist")
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_client_interceptor_adds_the_token(token_server: dict[str, Any], pki: PKIPaths) -> None:
    with secure_channel(token_server["target"], ca=pki.ca_cert, cert=pki.envoy_client_cert,
                        key=pki.envoy_client_key, token=TOKEN_C, header="x-api-key") as channel:
        assert _unary(channel) == b"ping"
        assert _stream(channel) == [b"ping"] * 3


def test_tokens_never_logged(token_server: dict[str, Any], pki: PKIPaths, auth_log: Any,
                             capsys: pytest.CaptureFixture[str]) -> None:
    wrong = "wrong-secret-token-987654321"
    with _mtls_channel(token_server["target"], pki) as channel:
        assert _unary(channel, token_metadata(TOKEN_A)) == b"ping"
        for metadata in (token_metadata(wrong), token_metadata(wrong, "x-api-key"), None):
            with pytest.raises(grpc.RpcError):
                _stream(channel, metadata)
    logged = auth_log.text + "".join(capsys.readouterr())
    assert "failed authentication of /wltest.Echo/Stream" in logged and "invalid token" in logged
    # A rejected token is not even fingerprinted (a fingerprint would confirm guesses offline).
    assert fingerprint(wrong) not in logged
    for secret in (wrong, TOKEN_A, TOKEN_B, TOKEN_C):
        assert secret not in logged


def test_failing_audit_callback_still_rejects(pki: PKIPaths, make_config: Callable[..., Any],
                                              serve: Callable[..., str], auth_log: Any) -> None:
    def broken(report: FailureReport) -> None:
        raise RuntimeError("audit down")

    config = make_config(GRPC_TLS_CERT_DIR=str(pki.directory))
    target = serve(plugin.weightslab_grpc_server_credentials(config),
                   [TokenAuthInterceptor([TOKEN_A], on_auth_failure=broken)])
    with _mtls_channel(target, pki) as channel:
        with pytest.raises(grpc.RpcError) as err:
            _unary(channel)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "auth failure callback" in auth_log.text


def test_no_token_configured_means_no_interceptor(make_config: Callable[..., Any]) -> None:
    assert plugin.weightslab_grpc_interceptors(make_config()) == []


def test_tls_disabled_warns_and_serves_insecure(make_config: Callable[..., Any], serve: Callable[..., str],
                                                auth_log: Any) -> None:
    config = make_config(GRPC_TLS_ENABLED="0", GRPC_AUTH_TOKEN=TOKEN_A)
    assert plugin.weightslab_grpc_server_credentials(config) is None
    assert any(r.levelname == "WARNING" and "GRPC_TLS_ENABLED=0" in r.getMessage() for r in auth_log.records)
    target = serve(None, plugin.weightslab_grpc_interceptors(config))
    with grpc.insecure_channel(target) as channel:
        assert _unary(channel, token_metadata(TOKEN_A)) == b"ping"
        with pytest.raises(grpc.RpcError) as err:
            _unary(channel)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_health_check_is_public_but_watch_needs_the_token(token_server: dict[str, Any], pki: PKIPaths) -> None:
    with _mtls_channel(token_server["target"], pki) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as err:
            next(iter(stub.Watch(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        watch = stub.Watch(health_pb2.HealthCheckRequest(), timeout=TIMEOUT, metadata=token_metadata(TOKEN_A))
        try:
            assert next(iter(watch)).status == health_pb2.HealthCheckResponse.SERVING
        finally:
            watch.cancel()
    assert [r.method for r in token_server["failures"]] == ["/grpc.health.v1.Health/Watch"]


def test_repeated_failures_are_aggregated_per_host(token_server: dict[str, Any], pki: PKIPaths) -> None:
    """330 failures/s from one client used to be 330 fsynced audit records/s: now one + one summary."""
    attempts = 60
    with _mtls_channel(token_server["target"], pki) as channel:
        for i in range(attempts):
            with pytest.raises(grpc.RpcError):
                _unary(channel, token_metadata(f"wrong-{i:04d}-0123456789") if i % 2 else None)
    assert len(token_server["failures"]) == 1
    token_server["interceptor"].stop()
    first, summary = token_server["failures"]
    assert (first.failures, summary.failures, summary.summary) == (1, attempts - 1, True)
    assert summary.reasons == {"invalid token": attempts // 2, "no token": attempts // 2 - 1}


def test_token_file_of_the_cert_dir_is_the_default_token(pki: PKIPaths, make_config: Callable[..., Any],
                                                          serve: Callable[..., str]) -> None:
    """After `weightslab certs init`, the gRPC server needs the token without any token variable."""
    config = make_config(GRPC_TLS_CERT_DIR=str(pki.directory))
    interceptors = plugin.weightslab_grpc_interceptors(config)
    assert [type(i) for i in interceptors] == [TokenAuthInterceptor]
    target = serve(plugin.weightslab_grpc_server_credentials(config), interceptors)
    with _mtls_channel(target, pki) as channel:
        with pytest.raises(grpc.RpcError) as err:
            _unary(channel)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert _unary(channel, token_metadata(load_token(pki.directory))) == b"ping"
    # An explicit token variable replaces the file (rotation is explicit).
    explicit = make_config(GRPC_TLS_CERT_DIR=str(pki.directory), GRPC_AUTH_TOKEN=TOKEN_A)
    assert configured_tokens(explicit) == (TOKEN_A,)
