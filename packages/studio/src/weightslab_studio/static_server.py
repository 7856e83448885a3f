"""The Studio's static files on loopback (Envoy is the only client), plus the generated ``/config.js``.

``/config.js`` carries the runtime settings (never the token) and is served ``no-store``; every
response carries the Content-Security-Policy. Only GET and HEAD; no directory listings; paths
never leave the static folder.
"""

from __future__ import annotations

import json
import mimetypes
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

CSP = ("default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Vite names built assets by content hash: they never change under the same name.
IMMUTABLE_PREFIX = "/assets/"


@dataclass(frozen=True)
class RuntimeConfig:
    """``window.WEIGHTSLAB_CONFIG`` (the front end falls back to its VITE_* values for a missing key)."""

    sandbox: bool
    histogram_max_bins: int
    max_prefetch_batches: int | None
    max_image_cache_size: int | None
    grid_cache_max_mb: int
    modal_cache_max_mb: int
    api_base_url: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"sandbox": self.sandbox, "histogramMaxBins": self.histogram_max_bins,
                "maxPrefetchBatches": self.max_prefetch_batches, "maxImageCacheSize": self.max_image_cache_size,
                "gridCacheMaxMb": self.grid_cache_max_mb, "modalCacheMaxMb": self.modal_cache_max_mb,
                "apiBaseUrl": self.api_base_url}

    def script(self) -> bytes:
        body = json.dumps(self.as_json(), sort_keys=True)
        return f"window.WEIGHTSLAB_CONFIG = Object.freeze({body});\n".encode()


def _handler(root: Path, config_js: bytes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "weightslab-studio"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # Envoy is the only client: stay quiet
            pass

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _send(self, status: int, body: bytes, content_type: str, cache: str, head: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _serve(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            if path == "/config.js":
                self._send(200, config_js, "text/javascript; charset=utf-8", "no-store", head)
                return
            file = self._resolve(path)
            if file is None:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8", "no-store", head)
                return
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
                kind += "; charset=utf-8"
            cache = "public, max-age=31536000, immutable" if path.startswith(IMMUTABLE_PREFIX) else "no-cache"
            self._send(200, file.read_bytes(), kind, cache, head)

        def _resolve(self, path: str) -> Path | None:
            if path in ("", "/"):
                path = "/index.html"
            candidate = (root / path.lstrip("/")).resolve()
            if not candidate.is_relative_to(root) or not candidate.is_file():
                return None
            return candidate

    return Handler


class StaticServer:
    """A threaded HTTP server on 127.0.0.1 (port 0 = any free port) serving ``root``."""

    def __init__(self, root: Path, config: RuntimeConfig, port: int = 0) -> None:
        self.root = root.resolve()
        self.config = config
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self.root, config.script()))
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="wl-studio-static", daemon=True)

    def start(self) -> StaticServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
