"""``weightslab studio``: the static server and a real Envoy in front of a running backend.

browser --HTTPS (h2, envoy-server cert)--> Envoy --HTTP/2 + mTLS (envoy-client cert)--> backend
                                              \\--HTTP/1.1 on loopback--> static server (+ /config.js)

:func:`launch` checks everything it can before starting anything (UI built, envoy binary,
certificates, ports, backend reachable), starts both servers, waits for Envoy's admin ``/ready``
and then calls ``GetStatus`` through Envoy exactly as the page will, so a broken mTLS path is
reported at start, not as a blank page. :meth:`StudioHandle.stop` stops Envoy (it also dies
with the launching thread through ``PR_SET_PDEATHSIG`` on Linux: no orphan proxy; so launch from
a thread that outlives the Studio, e.g. the main thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from weightslab_studio import grpcweb
from weightslab_studio.envoy_binary import find_envoy
from weightslab_studio.envoy_config import CertKey, EnvoyPlan, UpstreamTls, write_config
from weightslab_studio.errors import StudioError
from weightslab_studio.rpcs import path_of
from weightslab_studio.static_server import RuntimeConfig, StaticServer

log = logging.getLogger("weightslab.studio")

STATIC_DIR = Path(__file__).resolve().parent / "static"
SKIPPED_UI_MARKER = "UI_NOT_BUILT"  # written by hatch_build.py when WEIGHTSLAB_STUDIO_SKIP_UI=1
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
BUILD_HINT = "cd packages/studio/frontend && npm ci && npm run build"


@dataclass(frozen=True)
class StudioPlan:
    """Everything :func:`launch` starts, resolved from settings and explicit overrides."""

    envoy_host: str  # what the browser uses (the printed URL)
    listen_address: str  # the IP Envoy binds
    envoy_port: int
    admin_port: int
    backend_host: str
    backend_port: int
    sandbox: bool
    runtime: RuntimeConfig
    server: CertKey
    upstream_tls: UpstreamTls | None
    ca: Path | None  # verifies the envoy-server certificate in the start-up probe
    token: str | None
    static_dir: Path
    cert_dir: Path  # GRPC_TLS_CERT_DIR, named in error messages
    dev_origin: str | None = None

    @property
    def origin(self) -> str:
        host = f"[{self.envoy_host}]" if ":" in self.envoy_host else self.envoy_host
        return f"https://{host}" + ("" if self.envoy_port == 443 else f":{self.envoy_port}")

    @property
    def url(self) -> str:
        return f"{self.origin}/" + (f"#token={quote(self.token, safe='')}" if self.token else "")

    def envoy_plan(self, static_port: int) -> EnvoyPlan:
        origins = (self.origin,) + ((self.dev_origin,) if self.dev_origin else ())
        return EnvoyPlan(self.listen_address, self.envoy_port, self.admin_port, origins, self.server,
                         self.backend_host, self.backend_port, self.upstream_tls, static_port, self.sandbox)


# -- checks -------------------------------------------------------------------------------------------


def check_static_dir(static_dir: Path) -> Path:
    if (static_dir / "index.html").is_file():
        return static_dir
    if (static_dir / SKIPPED_UI_MARKER).is_file():
        raise StudioError("this weightslab-studio was built without its web UI (WEIGHTSLAB_STUDIO_SKIP_UI=1): "
                          f"{static_dir} has no index.html; rebuild the package without the variable, or "
                          f"build the UI in a source checkout: {BUILD_HINT}")
    raise StudioError(f"the Studio's web UI is not built: {static_dir} has no index.html; {BUILD_HINT} "
                      "(a wheel built from source runs this for you)")


def _check_pem(label: str, path: Path, *, cert: bool) -> str | None:
    if not path.is_file():
        return f"{label} {path}: file not found"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"{label} {path}: unreadable ({exc.strerror or exc})"
    if not cert:
        return None if b"PRIVATE KEY" in data else f"{label} {path}: not a PEM private key"
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError:
        return f"{label} {path}: not a valid PEM certificate"
    if certificate.not_valid_after_utc <= datetime.now(UTC):
        return f"{label} {path}: expired on {certificate.not_valid_after_utc:%Y-%m-%d} (`weightslab certs resign`)"
    return None


def check_certificates(plan: StudioPlan) -> None:
    pairs: list[tuple[str, Path, bool]] = [("envoy-server certificate", plan.server.cert, True),
                                           ("envoy-server key", plan.server.key, False)]
    if plan.upstream_tls is not None:
        pairs += [("envoy-client certificate", plan.upstream_tls.client.cert, True),
                  ("envoy-client key", plan.upstream_tls.client.key, False),
                  ("CA certificate", plan.upstream_tls.ca, True)]
    problems = [p for p in (_check_pem(label, path, cert=cert) for label, path, cert in pairs) if p]
    if problems:
        raise StudioError("the Studio's certificates are not usable: " + "; ".join(problems)
                          + f". Create the dev PKI with `weightslab certs init` (GRPC_TLS_CERT_DIR={plan.cert_dir})")


def _bind_ip(host: str, variable: str) -> str:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StudioError(f"{variable}={host!r}: cannot resolve the host ({exc.strerror})") from None
    ips = [str(info[4][0]) for info in infos]
    return next((ip for ip in ips if ":" not in ip), ips[0])


def check_port_free(ip: str, port: int, variable: str) -> None:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StudioError(f"{variable}={port}: port already in use on {ip}; stop what holds it "
                                  f"or set {variable} to a free port") from None
            raise StudioError(f"{variable}={port}: cannot listen on {ip} ({exc.strerror})") from None


def check_backend_reachable(host: str, port: int, timeout: float = 3.0) -> None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StudioError(f"the backend is not reachable at {host}:{port} (GRPC_BACKEND_HOST/GRPC_BACKEND_PORT): "
                          f"{reason}. Start the training job with wl.serve() (or `weightslab demo`) and point "
                          "GRPC_BACKEND_HOST/GRPC_BACKEND_PORT at its gRPC server") from None


# -- plan -----------------------------------------------------------------------------------------------


def _first_token(config: Any, cert_dir: Path) -> str | None:
    from weightslab_auth.pki import PKIError, load_token
    from weightslab_auth.settings import configured_tokens

    tokens = configured_tokens(config)
    if tokens:
        return tokens[0]
    try:
        return load_token(cert_dir)
    except PKIError:
        return None


def make_plan(*, environ: Mapping[str, str] | None = None, cwd: Path | None = None, backend_host: str | None = None,
              backend_port: int | None = None, envoy_host: str | None = None, envoy_port: int | None = None,
              admin_port: int | None = None, sandbox: bool | None = None, static_dir: Path | None = None,
              allow_dev_server: bool = False, token: str | None = None) -> StudioPlan:
    """Resolve the settings (env, ``.env``, defaults) and apply explicit overrides (they win)."""
    from weightslab.config import ConfigError
    from weightslab.settings import load_config
    from weightslab_auth.pki import PKIPaths
    from weightslab_auth.tls import resolve_tls_paths

    try:
        config = load_config(environ=environ, cwd=cwd, validate=False)
    except ConfigError as exc:
        raise StudioError(str(exc)) from None
    if "studio" not in config or "auth" not in config:
        raise StudioError("weightslab-studio and weightslab-auth must both be installed and enabled "
                          "(check WEIGHTSLAB_DISABLED_PLUGINS)")
    studio, auth = config["studio"], config["auth"]
    default_host, default_port = studio.backend_target()
    host = backend_host or default_host
    host = "localhost" if host in ("0.0.0.0", "::", "") else host
    cert_dir = Path(auth.cert_dir).expanduser()
    pki = PKIPaths.of(cert_dir)
    ca = resolve_tls_paths(config).ca.path
    upstream = UpstreamTls(CertKey(pki.envoy_client_cert, pki.envoy_client_key), ca) if auth.tls_enabled else None
    if upstream is None:
        log.warning("GRPC_TLS_ENABLED=0: Envoy talks to the backend in plaintext HTTP/2 (local debugging only)")
    public_host = envoy_host or studio.envoy_host
    listen = _bind_ip(public_host, "ENVOY_HOST")
    if public_host in ("0.0.0.0", "::"):
        public_host = "localhost"
    runtime = RuntimeConfig(sandbox=studio.is_a_sandbox if sandbox is None else sandbox,
                            histogram_max_bins=studio.histogram_max_bins,
                            max_prefetch_batches=studio.max_prefetch_batches,
                            max_image_cache_size=studio.max_image_cache_size,
                            grid_cache_max_mb=studio.grid_cache_max_mb, modal_cache_max_mb=studio.modal_cache_max_mb)
    vite_host = "localhost" if studio.vite_host in ("0.0.0.0", "::") else studio.vite_host
    return StudioPlan(
        envoy_host=public_host, listen_address=listen, envoy_port=envoy_port or studio.envoy_port,
        admin_port=admin_port or studio.envoy_admin_port, backend_host=host,
        backend_port=backend_port or default_port, sandbox=runtime.sandbox, runtime=runtime,
        server=CertKey(pki.envoy_server_cert, pki.envoy_server_key), upstream_tls=upstream, ca=pki.ca_cert,
        token=token or _first_token(config, cert_dir), static_dir=static_dir or STATIC_DIR, cert_dir=cert_dir,
        dev_origin=f"http://{vite_host}:{studio.vite_port}" if allow_dev_server else None)


# -- the running pair -------------------------------------------------------------------------------------


def _dies_with_parent() -> tuple[list[str], Callable[[], None] | None]:
    """``(command prefix, preexec_fn)`` that make Envoy get SIGTERM when the launching thread dies
    (Linux ``PR_SET_PDEATHSIG``), so a killed launcher leaves no orphan proxy.

    util-linux's ``setpriv --pdeathsig`` sets it in the exec'd process itself; only without it
    does the child run a ``prctl`` call (prepared here, so the forked child runs nothing else).
    """
    if not sys.platform.startswith("linux"):
        return [], None
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        return [setpriv, "--pdeathsig", "TERM", "--"], None
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return [], None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl

    def set_death_signal() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return [], set_death_signal


class StudioHandle:
    """A running static server + Envoy. ``stop()`` is idempotent; also a context manager."""

    def __init__(self, plan: StudioPlan, static: StaticServer, process: subprocess.Popen[bytes],
                 workdir: tempfile.TemporaryDirectory[str], log_file: Path) -> None:
        self.plan = plan
        self.static = static
        self.process = process
        self._workdir = workdir
        self.log_file = log_file
        self.url = plan.url
        self.origin = plan.origin

    @property
    def pid(self) -> int:
        return self.process.pid

    def envoy_log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        self.static.stop()
        self._workdir.cleanup()

    def wait(self) -> int:
        """Block until Envoy exits (an error: it should not) or Ctrl+C (then stop both and return 0)."""
        try:
            code = self.process.wait()
        except KeyboardInterrupt:
            self.stop()
            return 0
        tail = self.envoy_log_tail()
        self.stop()
        raise StudioError(f"Envoy exited with status {code}" + (f":\n{tail}" if tail else ""))

    def __enter__(self) -> StudioHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _wait_ready(handle: StudioHandle, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{handle.plan.admin_port}/ready"
    while True:
        code = handle.process.poll()
        if code is not None:
            raise StudioError(f"Envoy exited at start (status {code}):\n{handle.envoy_log_tail()}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 (loopback admin)
                if response.status == 200:
                    return
        if time.monotonic() > deadline:
            raise StudioError(f"Envoy did not become ready within {timeout:.0f}s:\n{handle.envoy_log_tail()}")
        time.sleep(0.05)  # polling Envoy's admin endpoint: there is no event to wait on


def probe_context(plan: StudioPlan) -> ssl.SSLContext:
    """Verifies the envoy-server certificate with the dev CA (the host name is the browser's business)."""
    context = grpcweb.tls_context(str(plan.ca) if plan.ca and plan.ca.is_file() else None)
    context.check_hostname = False
    return context


def probe(plan: StudioPlan, timeout: float = 10.0) -> grpcweb.GrpcWebReply:
    """``GetStatus`` through Envoy with the token, as the page does."""
    return grpcweb.call(plan.listen_address, plan.envoy_port, path_of("GetStatus"), token=plan.token,
                        context=probe_context(plan), timeout=timeout, origin=plan.origin)


def _explain_probe(plan: StudioPlan, reply: grpcweb.GrpcWebReply) -> None:
    if reply.status == grpcweb.OK:
        return
    where = f"{plan.backend_host}:{plan.backend_port}"
    if reply.status == grpcweb.UNAUTHENTICATED:
        log.warning("the backend at %s does not accept the token the URL carries (%s): the page will ask "
                    "for one (set GRPC_AUTH_TOKEN to the backend's token)", where, reply.message)
        return
    if reply.status == grpcweb.UNAVAILABLE:
        mode = "over mTLS (envoy-client certificate)" if plan.upstream_tls else "in plaintext HTTP/2"
        raise StudioError(f"Envoy cannot reach the backend at {where} {mode}: {reply.message or 'unavailable'}. "
                          "Check GRPC_BACKEND_HOST/GRPC_BACKEND_PORT and that the backend trusts the dev CA "
                          "(`weightslab certs init` for both)")
    log.warning("start-up probe GetStatus through Envoy answered grpc-status %s: %s", reply.status, reply.message)


def launch(plan: StudioPlan | None = None, *, envoy_binary: Path | None = None, probe_backend: bool = True,
           ready_timeout: float = READY_TIMEOUT, concurrency: int = 2, **overrides: Any) -> StudioHandle:
    """Check, start and verify the Studio; ``overrides`` go to :func:`make_plan` (e.g. ``backend_port``)."""
    plan = plan or make_plan(**overrides)
    binary = envoy_binary or find_envoy()
    check_static_dir(plan.static_dir)
    check_certificates(plan)
    check_port_free(plan.listen_address, plan.envoy_port, "ENVOY_PORT")
    check_port_free("127.0.0.1", plan.admin_port, "ENVOY_ADMIN_PORT")
    if plan.admin_port == plan.envoy_port and plan.listen_address in ("127.0.0.1", "0.0.0.0"):
        raise StudioError(f"ENVOY_ADMIN_PORT={plan.admin_port} equals ENVOY_PORT: choose two different ports")
    check_backend_reachable(plan.backend_host, plan.backend_port)

    static = StaticServer(plan.static_dir, plan.runtime).start()
    workdir = tempfile.TemporaryDirectory(prefix="wl-studio-")
    try:
        config_path = write_config(plan.envoy_plan(static.port), Path(workdir.name) / "envoy.json")
        log_file = Path(workdir.name) / "envoy.log"
        prefix, preexec = _dies_with_parent()
        with log_file.open("wb") as sink:
            process = subprocess.Popen(  # noqa: S603 (our binary, our config)
                [*prefix, str(binary), "-c", str(config_path), "--disable-hot-restart", "--log-level", "warn",
                 "--concurrency", str(concurrency)],
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl+C reaches the launcher, which stops Envoy in order
                preexec_fn=preexec)  # noqa: PLW1509
    except BaseException:
        static.stop()
        workdir.cleanup()
        raise
    handle = StudioHandle(plan, static, process, workdir, log_file)
    try:
        _wait_ready(handle, ready_timeout)
        if probe_backend:
            try:
                reply = probe(plan)
            except OSError as exc:
                raise StudioError(f"cannot reach Envoy at {plan.listen_address}:{plan.envoy_port} "
                                  f"for the start-up check: {exc}") from None
            _explain_probe(plan, reply)
    except BaseException:
        handle.stop()
        raise
    if plan.sandbox:
        log.info("sandbox mode: write controls hidden and every mutating RPC refused by Envoy")
    return handle
