"""The Envoy bootstrap (v3, JSON) of ``weightslab studio``, built from the resolved settings.

One HTTPS listener (the envoy-server certificate, ALPN h2 + http/1.1) serves one origin:
``/weightslab.v1.ExperimentService/*`` goes through ``grpc_web`` + ``cors`` (own origin only)
+ ``router`` to the backend over HTTP/2 with mTLS (the envoy-client certificate); every other
path goes to the launcher's static server on loopback. Sandbox mode adds an ``rbac`` filter that
refuses every method not known to be read-only (:mod:`weightslab_studio.rpcs`). Admin listens on
127.0.0.1 only.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightslab_studio.rpcs import READ_ONLY, SERVICE_PREFIX, path_of

_T = "type.googleapis.com/envoy.extensions."
BACKEND_CLUSTER = "backend"
STATIC_CLUSTER = "static"
SANDBOX_POLICY = "sandbox-refuses-writes"
CORS_ALLOW_HEADERS = ("authorization", "content-type", "x-grpc-web", "x-user-agent", "grpc-timeout",
                      "connect-protocol-version", "connect-timeout-ms")
CORS_EXPOSE_HEADERS = ("grpc-status", "grpc-message", "grpc-status-details-bin")


@dataclass(frozen=True)
class CertKey:
    cert: Path
    key: Path


@dataclass(frozen=True)
class UpstreamTls:
    """mTLS to the backend: the client certificate Envoy presents and the CA that signed the backend's."""

    client: CertKey
    ca: Path


@dataclass(frozen=True)
class EnvoyPlan:
    listen_address: str  # an IP literal (names are resolved by the launcher)
    listen_port: int
    admin_port: int
    origins: tuple[str, ...]  # CORS: the Studio's own origin (plus the Vite dev server when asked)
    server: CertKey
    backend_host: str
    backend_port: int
    upstream_tls: UpstreamTls | None  # None: the backend speaks plaintext HTTP/2 (GRPC_TLS_ENABLED=0)
    static_port: int
    sandbox: bool = False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _tls_certificate(pair: CertKey) -> dict[str, Any]:
    return {"certificate_chain": {"filename": str(pair.cert)}, "private_key": {"filename": str(pair.key)}}


def _endpoint_cluster(name: str, host: str, port: int) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name, "connect_timeout": "5s",
        "type": "STATIC" if _is_ip(host) else "LOGICAL_DNS",
        "load_assignment": {"cluster_name": name, "endpoints": [
            {"lb_endpoints": [{"endpoint": {"address": _address(host, port)}}]}]},
    }
    if not _is_ip(host):
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    return cluster


def backend_cluster(plan: EnvoyPlan) -> dict[str, Any]:
    cluster = _endpoint_cluster(BACKEND_CLUSTER, plan.backend_host, plan.backend_port)
    cluster["typed_extension_protocol_options"] = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": _T + "upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}}}}
    tls = plan.upstream_tls
    if tls is not None:
        san_type = "IP_ADDRESS" if _is_ip(plan.backend_host) else "DNS"
        context: dict[str, Any] = {
            "@type": _T + "transport_sockets.tls.v3.UpstreamTlsContext",
            "common_tls_context": {
                "alpn_protocols": ["h2"],
                "tls_certificates": [_tls_certificate(tls.client)],
                "validation_context": {
                    "trusted_ca": {"filename": str(tls.ca)},
                    "match_typed_subject_alt_names": [{"san_type": san_type,
                                                       "matcher": {"exact": plan.backend_host}}]}}}
        if san_type == "DNS":
            context["sni"] = plan.backend_host
        cluster["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": context}
    return cluster


def sandbox_rbac() -> dict[str, Any]:
    """Deny every method of the service that is not read-only (PERMISSION_DENIED at the proxy)."""
    read_only = [{"url_path": {"path": {"exact": path_of(m)}}} for m in sorted(READ_ONLY)]
    permission = {"and_rules": {"rules": [
        {"url_path": {"path": {"prefix": SERVICE_PREFIX}}},
        {"not_rule": {"or_rules": {"rules": read_only}}},
    ]}}
    return {"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": _T + "filters.http.rbac.v3.RBAC",
        "rules": {"action": "DENY", "policies": {SANDBOX_POLICY: {
            "permissions": [permission], "principals": [{"any": True}]}}}}}


def http_filters(plan: EnvoyPlan) -> list[dict[str, Any]]:
    # grpc_web first: it turns gRPC-Web into gRPC, so the RBAC denial is a gRPC local reply
    # (grpc-status 7) that grpc_web encodes back for the browser.
    filters: list[dict[str, Any]] = [
        {"name": "envoy.filters.http.grpc_web", "typed_config": {"@type": _T + "filters.http.grpc_web.v3.GrpcWeb"}},
        {"name": "envoy.filters.http.cors", "typed_config": {"@type": _T + "filters.http.cors.v3.Cors"}},
    ]
    if plan.sandbox:
        filters.append(sandbox_rbac())
    filters.append({"name": "envoy.filters.http.router",
                    "typed_config": {"@type": _T + "filters.http.router.v3.Router"}})
    return filters


def route_config(plan: EnvoyPlan) -> dict[str, Any]:
    cors = {"@type": _T + "filters.http.cors.v3.CorsPolicy",
            "allow_origin_string_match": [{"exact": origin} for origin in plan.origins],
            "allow_methods": "GET, POST, OPTIONS",
            "allow_headers": ", ".join(CORS_ALLOW_HEADERS),
            "expose_headers": ", ".join(CORS_EXPOSE_HEADERS),
            "max_age": "600"}
    return {"name": "studio", "virtual_hosts": [{
        "name": "studio", "domains": ["*"],
        "typed_per_filter_config": {"envoy.filters.http.cors": cors},
        "routes": [
            # timeout 0: StreamSample streams; the client's grpc-timeout header still applies
            {"match": {"prefix": SERVICE_PREFIX},
             "route": {"cluster": BACKEND_CLUSTER, "timeout": "0s",
                       "max_stream_duration": {"grpc_timeout_header_max": "0s"}}},
            {"match": {"prefix": "/"}, "route": {"cluster": STATIC_CLUSTER}},
        ]}]}


def listener(plan: EnvoyPlan) -> dict[str, Any]:
    hcm = {"@type": _T + "filters.network.http_connection_manager.v3.HttpConnectionManager",
           "stat_prefix": "studio", "codec_type": "AUTO",
           # one canonical path before routing and RBAC: no //, /./ or %2F detours around a rule
           "normalize_path": True, "merge_slashes": True,
           "path_with_escaped_slashes_action": "REJECT_REQUEST",
           "route_config": route_config(plan), "http_filters": http_filters(plan)}
    tls = {"@type": _T + "transport_sockets.tls.v3.DownstreamTlsContext",
           "common_tls_context": {"alpn_protocols": ["h2", "http/1.1"],
                                  "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                                  "tls_certificates": [_tls_certificate(plan.server)]}}
    return {"name": "studio", "address": _address(plan.listen_address, plan.listen_port),
            "filter_chains": [{
                "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": tls},
                "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}]}


def build_config(plan: EnvoyPlan) -> dict[str, Any]:
    """The whole bootstrap as a JSON-ready mapping."""
    static = _endpoint_cluster(STATIC_CLUSTER, "127.0.0.1", plan.static_port)
    return {"admin": {"address": _address("127.0.0.1", plan.admin_port)},
            "static_resources": {"listeners": [listener(plan)], "clusters": [backend_cluster(plan), static]}}


def write_config(plan: EnvoyPlan, path: Path) -> Path:
    path.write_text(json.dumps(build_config(plan), indent=2) + "\n", encoding="utf-8")
    return path
