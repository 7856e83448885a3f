"""The gRPC server's lifecycle: options, worker pool, concurrency cap, TLS, restart.

``GrpcServerHandle`` is what ``experiment.services["grpc"]`` holds. ``restart()`` (used by the
watchdog when RPCs are stuck) stops the server and starts a new one on the same address with
the same servicer, interceptors and credentials — the experiment state is untouched — on a
fresh worker pool (the old one may still hold stuck threads), and returns once it serves.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from weightslab.audit import get_audit_log
from weightslab.config import ConfigError
from weightslab.config.fields import is_loopback_host

from weightslab_grpc_server.interceptors import AuthOutcomeAuditInterceptor, StreamLimitInterceptor
from weightslab_grpc_server.servicer import SERVICE_NAME, ExperimentServicer

log = logging.getLogger("weightslab.grpc")

DEFAULT_WORKERS = 16
MAX_WORKERS = 64
RESTART_BIND_TIMEOUT = 10.0
STOP_GRACE_SECONDS = 1.0
HANDSHAKE_TIMEOUT_MS = 10_000  # a connection that has not finished TLS/HTTP2 set-up by then is dropped
# An established connection with no call for this long is closed (GOAWAY; clients reconnect on
# their next call): connections cannot be hoarded. grpcio offers no per-peer connection count, so
# this, the handshake deadline, the per-peer stream cap and the overall connection cap below bound
# what one host can hold.
IDLE_CONNECTION_MS = 300_000
# Connections accepted at once (grpc core refuses more at accept): file descriptors and memory stay
# bounded whatever a client opens. Generous, so hoarding it takes many connections held busy.
MAX_CONNECTIONS = 256


class GrpcBindError(RuntimeError):
    """The server could not bind its address (port in use, unknown interface...)."""


def format_address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):  # IPv6 literal
        host = f"[{host}]"
    return f"{host}:{port}"


def _flatten(results: Any) -> list[Any]:
    out: list[Any] = []
    for item in results or []:
        if item is None:
            continue
        if isinstance(item, (list, tuple)):
            out.extend(i for i in item if i is not None)
        else:
            out.append(item)
    return out


class GrpcServerHandle:
    """A restartable gRPC server for one experiment."""

    def __init__(self, experiment: Any, config: Any = None, *, pm: Any = None,
                 servicer: ExperimentServicer | None = None) -> None:
        self.experiment = experiment
        self.config = config if config is not None else experiment.config
        self.pm = pm if pm is not None else getattr(experiment, "pm", None)
        settings = self.config["grpc"]
        self.host: str = settings.host
        self.requested_port: int = int(settings.port)
        self.port: int = int(settings.port)  # the bound port once started (port 0 -> actual)
        self.max_message_bytes: int = int(settings.max_message_bytes)
        if settings.max_concurrent_rpcs is not None:
            self.max_concurrent_rpcs = int(settings.max_concurrent_rpcs)
            self.workers = max(1, min(self.max_concurrent_rpcs, MAX_WORKERS))
        else:
            self.workers = DEFAULT_WORKERS
            self.max_concurrent_rpcs = self.workers
        self.audit = get_audit_log(experiment)
        self.servicer = servicer or ExperimentServicer(experiment, audit=self.audit, pm=self.pm)
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.restarts = 0
        self.secure = False
        self._lock = threading.RLock()
        self._server: grpc.Server | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._credentials: Any = None
        self._interceptors: list[Any] | None = None
        self.stream_limit: StreamLimitInterceptor | None = None

    # -- introspection -------------------------------------------------------------
    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    @property
    def running(self) -> bool:
        return self._server is not None

    def options(self) -> list[tuple[str, Any]]:
        return [
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.so_reuseport", 0),  # a port in use must fail, not be silently shared
            # pre-authentication deadline: a client cannot hold a connection open by never
            # completing the handshake (calls themselves are authenticated one by one)
            ("grpc.server_handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS),
            ("grpc.max_connection_idle_ms", IDLE_CONNECTION_MS),
            ("grpc.max_allowed_incoming_connections", MAX_CONNECTIONS),
        ]

    def __repr__(self) -> str:
        state = "serving" if self.running else "stopped"
        return f"GrpcServerHandle({self.address}, {state}, tls={self.secure})"

    # -- composition (once: reused by every restart) ------------------------------------
    def _compose(self) -> None:
        if self._interceptors is not None:
            return
        hook = self.pm.hook if self.pm is not None else None
        credentials = hook.weightslab_grpc_server_credentials(config=self.config) if hook else None
        interceptors = _flatten(hook.weightslab_grpc_interceptors(config=self.config, experiment=self.experiment)
                                if hook else [])
        self._check_exposure(credentials is not None)
        security = hook.weightslab_server_security(config=self.config) if hook else None
        self.servicer.accepted_tokens = security.tokens if security is not None else None
        listeners = [i for i in interceptors if callable(getattr(i, "add_auth_failure_listener", None))]
        for interceptor in listeners:
            interceptor.add_auth_failure_listener(self._audit_auth_failure)
        if not listeners:
            interceptors.insert(0, AuthOutcomeAuditInterceptor(self.audit))
        # After authentication (an unauthenticated stream is refused before it counts) and before
        # the watchdog's tracking (a refused stream never looks in flight).
        auth_end = max((i + 1 for i, x in enumerate(interceptors)
                        if x in listeners or isinstance(x, AuthOutcomeAuditInterceptor)), default=0)
        self.stream_limit = StreamLimitInterceptor.for_concurrency(self.max_concurrent_rpcs)
        interceptors.insert(auth_end, self.stream_limit)
        self._credentials = credentials
        self._interceptors = interceptors
        if credentials is None:
            log.warning("!!! the gRPC server on %s serves WITHOUT TLS (no credentials from any plugin: "
                        "install weightslab[auth] and keep GRPC_TLS_ENABLED=1). Anyone who can reach the "
                        "port can read and change the experiment. !!!", format_address(self.host, self.port))

    def _audit_auth_failure(self, report: Any) -> None:
        from weightslab.auth_failures import audit_fields

        self.audit.record("auth_failure", **audit_fields(report))

    def _check_exposure(self, tls: bool) -> None:
        """Refuse a non-loopback bind that authenticates nobody (no token and no mTLS)."""
        if is_loopback_host(self.host):
            return
        tokens: tuple[str, ...] = ()
        mtls = False
        if "auth" in self.config:
            from weightslab_auth.settings import configured_tokens

            tokens = configured_tokens(self.config)
            mtls = tls and bool(self.config["auth"].require_client_auth)
        if tokens or mtls:
            if not tls:
                log.warning("!!! the gRPC server on non-loopback GRPC_BACKEND_HOST=%r has GRPC_TLS_ENABLED=0: "
                            "the token and all data travel in clear text on the network !!!", self.host)
            return
        if self.config["grpc"].allow_unauthenticated_remote:
            log.warning("!!! GRPC_ALLOW_UNAUTHENTICATED_REMOTE=1: the gRPC server on non-loopback "
                        "GRPC_BACKEND_HOST=%r authenticates nobody (no token, no mTLS%s). Anyone who reaches "
                        "the port can read and change the experiment. !!!", self.host,
                        "" if tls else ", no TLS")
            return
        raise ConfigError(
            f"refusing to serve gRPC on non-loopback GRPC_BACKEND_HOST={self.host!r} without authentication: "
            f"{'TLS is off (GRPC_TLS_ENABLED=0 or weightslab-auth disabled)' if not tls else 'TLS without client certificates (GRPC_TLS_REQUIRE_CLIENT_AUTH=0)'} "
            "and no token (GRPC_AUTH_TOKEN/GRPC_AUTH_TOKENS unset and no token file from `weightslab certs init` "
            "in GRPC_TLS_CERT_DIR). Fix one of: GRPC_BACKEND_HOST=127.0.0.1; GRPC_TLS_ENABLED=1 with "
            "GRPC_TLS_REQUIRE_CLIENT_AUTH=1; GRPC_AUTH_TOKEN=<token>; or, only on a network where every host "
            "is trusted, GRPC_ALLOW_UNAUTHENTICATED_REMOTE=1 (dangerous).")

    def _build(self) -> tuple[grpc.Server, ThreadPoolExecutor]:
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="weightslab-grpc")
        server = grpc.server(pool, handlers=[self.servicer.generic_handler()],
                             interceptors=self._interceptors or [], options=self.options(),
                             maximum_concurrent_rpcs=self.max_concurrent_rpcs)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        if self.pm is not None:
            self.pm.hook.weightslab_grpc_services(server=server, experiment=self.experiment)
        return server, pool

    def _bind(self, server: grpc.Server, port: int) -> int:
        address = format_address(self.host, port)
        try:
            if self._credentials is not None:
                bound = server.add_secure_port(address, self._credentials)
            else:
                bound = server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        return int(bound)

    def _bind_error(self, port: int) -> GrpcBindError:
        return GrpcBindError(
            f"cannot start the gRPC server on {format_address(self.host, port)}: the address is in use or not "
            f"available (GRPC_BACKEND_HOST={self.host!r}, GRPC_BACKEND_PORT={port}); choose another port "
            "(GRPC_BACKEND_PORT or wl.serve(grpc_port=...)) or stop the process using it")

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> GrpcServerHandle:
        """Bind and start serving (blocks until serving). Raises :class:`GrpcBindError`."""
        with self._lock:
            if self._server is not None:
                return self
            self._compose()
            self._start(self.port, retry_for=0.0)
            log.info("gRPC server serving %s on %s (%s, %d workers, max %d concurrent RPCs)", SERVICE_NAME,
                     self.address, "TLS" if self.secure else "INSECURE", self.workers, self.max_concurrent_rpcs)
        return self

    def _start(self, port: int, retry_for: float) -> None:
        deadline = time.monotonic() + retry_for
        while True:
            server, pool = self._build()
            bound = self._bind(server, port)
            if bound:
                break
            server.stop(None)
            pool.shutdown(wait=False)
            if time.monotonic() >= deadline:
                raise self._bind_error(port)
            time.sleep(0.05)  # restart: the old listener may take a moment to go away
        server.start()
        self.port = bound
        self.secure = self._credentials is not None
        self._server, self._pool = server, pool
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float | None = STOP_GRACE_SECONDS) -> None:
        """Stop serving (in-flight RPCs get ``grace`` seconds). Idempotent."""
        with self._lock:
            server, pool = self._server, self._pool
            if server is None:
                return
            for name in ("", SERVICE_NAME):
                self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
            self._server = self._pool = None
            server.stop(grace).wait((grace or 0) + 5)
            for interceptor in self._interceptors or []:
                stop_failures = getattr(getattr(interceptor, "failures", None), "stop", None)
                if callable(stop_failures):
                    stop_failures()  # report the failures still being counted
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)  # stuck threads must not block us
            log.info("gRPC server on %s stopped", self.address)

    def restart(self) -> None:
        """Stop and start again on the same address with the same servicer; blocks until serving."""
        with self._lock:
            self.stop(grace=0.2)
            self._compose()
            self._start(self.port, retry_for=RESTART_BIND_TIMEOUT)
            self.restarts += 1
            log.info("gRPC server restarted on %s (restart #%d)", self.address, self.restarts)

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        server = self._server
        return True if server is None else bool(server.wait_for_termination(timeout))


def start_server(experiment: Any, config: Any = None, *, pm: Any = None) -> GrpcServerHandle:
    """Create and start the server of ``experiment`` (publish it yourself, or use the plugin)."""
    return GrpcServerHandle(experiment, config, pm=pm).start()
