"""The static server: /config.js from the resolved settings (no-store, never the token), CSP on
every response, files only from the static folder; the runtime settings reach config.js."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from weightslab_auth.pki import PKIPaths
from weightslab_studio.launcher import make_plan
from weightslab_studio.static_server import CSP, RuntimeConfig, StaticServer


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def config_of(body: bytes) -> dict[str, Any]:
    text = body.decode()
    assert text.startswith("window.WEIGHTSLAB_CONFIG = Object.freeze(") and text.endswith(");\n")
    parsed: dict[str, Any] = json.loads(text[len("window.WEIGHTSLAB_CONFIG = Object.freeze("):-3])
    return parsed


@pytest.fixture
def server(stub_static: Path) -> Iterator[StaticServer]:
    runtime = RuntimeConfig(sandbox=False, histogram_max_bins=512, max_prefetch_batches=None,
                            max_image_cache_size=None, grid_cache_max_mb=128, modal_cache_max_mb=64)
    srv = StaticServer(stub_static, runtime).start()
    yield srv
    srv.stop()


def test_index_config_and_assets_with_their_cache_rules(server: StaticServer) -> None:
    status, headers, body = get(server.port, "/")
    assert status == 200 and b"<title>stub</title>" in body
    assert headers["content-type"].startswith("text/html") and headers["cache-control"] == "no-cache"
    assert headers["content-security-policy"] == CSP
    status, headers, body = get(server.port, "/config.js")
    assert status == 200 and headers["cache-control"] == "no-store"
    assert headers["content-type"].startswith("text/javascript")
    assert config_of(body) == {"sandbox": False, "histogramMaxBins": 512, "maxPrefetchBatches": None,
                               "maxImageCacheSize": None, "gridCacheMaxMb": 128, "modalCacheMaxMb": 64,
                               "apiBaseUrl": None}
    status, headers, _ = get(server.port, "/assets/app-1234.js")
    assert status == 200 and "immutable" in headers["cache-control"]
    status, headers, body = get(server.port, "/index.html", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


def test_csp_matches_the_contract() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["img-src"] == "'self' blob: data:"
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/assets/../../x",
                                  "/assets/", "/missing.js", "//etc/passwd"])
def test_nothing_outside_the_folder_and_no_listings(server: StaticServer, path: str) -> None:
    status, headers, body = get(server.port, path)
    assert status == 404, (path, body)
    assert headers["content-security-policy"] == CSP


def test_only_get_and_head(server: StaticServer) -> None:
    status, _, _ = get(server.port, "/", method="POST")
    assert status == 501


def test_runtime_settings_reach_config_js_and_the_token_never_does(
        pki: PKIPaths, token: str, env_file: Path, environ: dict[str, str], stub_static: Path) -> None:
    settings = {"VITE_IS_A_SANDBOX": "1", "VITE_HISTOGRAM_MAX_BINS": "4096", "VITE_MAX_PREFETCH_BATCHES": "2",
                "VITE_WS_MAX_IMAGE_CACHE_SIZE": "12", "VITE_WS_GRID_CACHE_MAX_MB": "256",
                "VITE_WS_MODAL_CACHE_MAX_MB": "32"}
    plan = make_plan(environ={**environ, **settings}, static_dir=stub_static)
    assert plan.token == token
    srv = StaticServer(stub_static, plan.runtime).start()
    try:
        _, _, body = get(srv.port, "/config.js")
    finally:
        srv.stop()
    assert config_of(body) == {"sandbox": True, "histogramMaxBins": 512, "maxPrefetchBatches": 2,
                               "maxImageCacheSize": 12, "gridCacheMaxMb": 256, "modalCacheMaxMb": 32,
                               "apiBaseUrl": None}
    assert token.encode() not in body
    # an explicit override wins over VITE_IS_A_SANDBOX
    assert make_plan(environ={**environ, **settings}, sandbox=False).runtime.sandbox is False
    assert make_plan(environ=environ).runtime.as_json()["histogramMaxBins"] == 512
    assert make_plan(environ={**environ, "VITE_HISTOGRAM_MAX_BINS": "64"}).runtime.histogram_max_bins == 64
