"""The generated Envoy bootstrap: its structure, and `envoy --mode validate` on real variants."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from weightslab_auth.pki import PKIPaths
from weightslab_studio.envoy_config import (
    BACKEND_CLUSTER,
    STATIC_CLUSTER,
    CertKey,
    EnvoyPlan,
    UpstreamTls,
    build_config,
    write_config,
)
from weightslab_studio.rpcs import SERVICE_PREFIX


def plan_of(pki: PKIPaths, **changes: Any) -> EnvoyPlan:
    values: dict[str, Any] = dict(
        listen_address="127.0.0.1", listen_port=18443, admin_port=19901, origins=("https://localhost:18443",),
        server=CertKey(pki.envoy_server_cert, pki.envoy_server_key), backend_host="localhost", backend_port=15051,
        upstream_tls=UpstreamTls(CertKey(pki.envoy_client_cert, pki.envoy_client_key), pki.ca_cert),
        static_port=18000, sandbox=False)
    values.update(changes)
    return EnvoyPlan(**values)


def hcm(config: dict[str, Any]) -> dict[str, Any]:
    (listener,) = config["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    (network_filter,) = chain["filters"]
    assert network_filter["name"] == "envoy.filters.network.http_connection_manager"
    return network_filter["typed_config"]


def clusters(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def test_listener_https_with_h2_alpn_and_the_envoy_server_certificate(pki: PKIPaths) -> None:
    config = build_config(plan_of(pki))
    (listener,) = config["static_resources"]["listeners"]
    assert listener["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 18443}
    tls = listener["filter_chains"][0]["transport_socket"]["typed_config"]
    assert tls["@type"].endswith("DownstreamTlsContext")
    assert tls["common_tls_context"]["alpn_protocols"][0] == "h2"
    (cert,) = tls["common_tls_context"]["tls_certificates"]
    assert cert == {"certificate_chain": {"filename": str(pki.envoy_server_cert)},
                    "private_key": {"filename": str(pki.envoy_server_key)}}


def test_admin_on_loopback_only(pki: PKIPaths) -> None:
    config = build_config(plan_of(pki, listen_address="0.0.0.0"))
    assert config["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 19901}


def test_filters_and_routes_one_origin_for_page_and_grpc_web(pki: PKIPaths) -> None:
    manager = hcm(build_config(plan_of(pki)))
    assert [f["name"] for f in manager["http_filters"]] == [
        "envoy.filters.http.grpc_web", "envoy.filters.http.cors", "envoy.filters.http.router"]
    assert manager["normalize_path"] and manager["merge_slashes"]
    (host,) = manager["route_config"]["virtual_hosts"]
    grpc_route, static_route = host["routes"]
    assert grpc_route["match"] == {"prefix": SERVICE_PREFIX}
    assert grpc_route["route"]["cluster"] == BACKEND_CLUSTER
    assert static_route == {"match": {"prefix": "/"}, "route": {"cluster": STATIC_CLUSTER}}
    cors = host["typed_per_filter_config"]["envoy.filters.http.cors"]
    assert cors["allow_origin_string_match"] == [{"exact": "https://localhost:18443"}]  # own origin only
    assert "authorization" in cors["allow_headers"] and "grpc-status" in cors["expose_headers"]


def test_sandbox_adds_rbac_before_the_router(pki: PKIPaths) -> None:
    names = [f["name"] for f in hcm(build_config(plan_of(pki, sandbox=True)))["http_filters"]]
    assert names == ["envoy.filters.http.grpc_web", "envoy.filters.http.cors", "envoy.filters.http.rbac",
                     "envoy.filters.http.router"]


def test_upstream_http2_with_mtls_and_the_backend_name_checked(pki: PKIPaths) -> None:
    backend = clusters(build_config(plan_of(pki)))[BACKEND_CLUSTER]
    options = backend["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in options["explicit_http_config"]
    assert backend["type"] == "LOGICAL_DNS"
    tls = backend["transport_socket"]["typed_config"]
    assert tls["sni"] == "localhost"
    common = tls["common_tls_context"]
    assert common["tls_certificates"] == [{"certificate_chain": {"filename": str(pki.envoy_client_cert)},
                                           "private_key": {"filename": str(pki.envoy_client_key)}}]
    validation = common["validation_context"]
    assert validation["trusted_ca"] == {"filename": str(pki.ca_cert)}
    assert validation["match_typed_subject_alt_names"] == [{"san_type": "DNS", "matcher": {"exact": "localhost"}}]
    ip_backend = clusters(build_config(plan_of(pki, backend_host="127.0.0.1")))[BACKEND_CLUSTER]
    assert ip_backend["type"] == "STATIC"
    san = ip_backend["transport_socket"]["typed_config"]["common_tls_context"]["validation_context"]
    assert san["match_typed_subject_alt_names"] == [{"san_type": "IP_ADDRESS", "matcher": {"exact": "127.0.0.1"}}]


def test_plaintext_upstream_when_backend_tls_is_off(pki: PKIPaths) -> None:
    backend = clusters(build_config(plan_of(pki, upstream_tls=None)))[BACKEND_CLUSTER]
    assert "transport_socket" not in backend


def test_static_cluster_is_loopback_http(pki: PKIPaths) -> None:
    static = clusters(build_config(plan_of(pki)))[STATIC_CLUSTER]
    endpoint = static["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 18000}
    assert "transport_socket" not in static


@pytest.mark.parametrize("changes", [
    {}, {"sandbox": True}, {"upstream_tls": None}, {"backend_host": "127.0.0.1"},
    {"origins": ("https://localhost:18443", "http://localhost:5174")},
], ids=["default", "sandbox", "plaintext-upstream", "ip-backend", "dev-origin"])
def test_envoy_validates_the_generated_config(pki: PKIPaths, envoy_path: Path, tmp_path: Path,
                                              changes: dict[str, Any]) -> None:
    path = write_config(plan_of(pki, **changes), tmp_path / "envoy.json")
    assert json.loads(path.read_text()) == build_config(plan_of(pki, **changes))
    result = subprocess.run([str(envoy_path), "--mode", "validate", "-c", str(path), "--disable-hot-restart",
                             "--log-level", "error"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


def test_envoy_rejects_a_broken_config(envoy_path: Path, tmp_path: Path, pki: PKIPaths) -> None:
    """The validation test above can fail: a config naming an unknown filter does not validate."""
    config = build_config(plan_of(pki))
    hcm(config)["http_filters"].insert(0, {"name": "bogus", "typed_config": {"@type": "type.googleapis.com/nope"}})
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(config))
    result = subprocess.run([str(envoy_path), "--mode", "validate", "-c", str(path), "--disable-hot-restart",
                             "--log-level", "error"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
