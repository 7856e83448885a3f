"""Front-end and proxy settings owned by weightslab-studio."""

from __future__ import annotations

from typing import Annotated

from weightslab.config import Setting, SettingsSection
from weightslab.config import fields as f


class StudioSettings(SettingsSection):
    section = "studio"
    owner = "weightslab-studio"

    # GRPC_BACKEND_HOST/PORT are shared with the gRPC server; here they name the proxy target
    # and a bind-all 0.0.0.0 means localhost (see backend_target()).
    backend_host: Annotated[str, Setting(
        "GRPC_BACKEND_HOST", f.host, "Backend host Envoy forwards to.")] = "localhost"
    backend_port: Annotated[int, Setting(
        "GRPC_BACKEND_PORT", f.port_or_zero, "Backend port Envoy forwards to.")] = 50051
    envoy_host: Annotated[str, Setting("ENVOY_HOST", f.host, "Host of the Envoy proxy.")] = "localhost"
    envoy_port: Annotated[int, Setting("ENVOY_PORT", f.port, "Envoy HTTPS/gRPC-Web port.")] = 8080
    envoy_admin_port: Annotated[int, Setting(
        "ENVOY_ADMIN_PORT", f.port, "Envoy admin port (loopback only).")] = 9901
    vite_host: Annotated[str, Setting("VITE_HOST", f.host, "Vite dev server host.")] = "0.0.0.0"
    vite_port: Annotated[int, Setting("VITE_PORT", f.port, "Vite dev server port.")] = 5173
    server_host: Annotated[str, Setting(
        "VITE_SERVER_HOST", f.host, "Host the browser uses to reach the backend.")] = "localhost"
    server_port: Annotated[int, Setting(
        "VITE_SERVER_PORT", f.port, "Port the browser uses.")] = 8080
    server_protocol: Annotated[str, Setting(
        "VITE_SERVER_PROTOCOL", f.choice("http", "https"), "Protocol the browser uses.")] = "https"
    is_a_sandbox: Annotated[bool, Setting(
        "VITE_IS_A_SANDBOX", f.boolean, "Demo mode: every write refused.")] = False
    max_prefetch_batches: Annotated[int | None, Setting(
        "VITE_MAX_PREFETCH_BATCHES", f.number(int, minimum=1, maximum=3, accepted="an integer 1..3"),
        "Image batches prefetched (unset = device-adaptive 1-3).")] = None
    histogram_max_bins: Annotated[int, Setting(
        "VITE_HISTOGRAM_MAX_BINS", f.clamped_int(1, 512), "Max histogram bars.")] = 512
    max_image_cache_size: Annotated[int | None, Setting(
        "VITE_WS_MAX_IMAGE_CACHE_SIZE", f.positive_int,
        "Max images in the browser image cache (unset = prefetch + 4).")] = None
    grid_cache_max_mb: Annotated[int, Setting(
        "VITE_WS_GRID_CACHE_MAX_MB", f.positive_int, "Grid tile cache budget (MB).")] = 128
    modal_cache_max_mb: Annotated[int, Setting(
        "VITE_WS_MODAL_CACHE_MAX_MB", f.positive_int, "Modal image cache budget (MB).")] = 64

    def backend_target(self) -> tuple[str, int]:
        host = "localhost" if self.backend_host in ("0.0.0.0", "::", "") else self.backend_host
        return host, self.backend_port
