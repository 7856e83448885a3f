"""The CLI inspection server: a line-oriented JSON protocol over TCP (TLS when enabled).

Started by ``wl.serve(serving_cli=True)`` through the ``weightslab_serve`` hook, in daemon
threads of the training process (one for ``accept``, one per connection). See
:mod:`weightslab_cli.protocol` for the wire format and :mod:`weightslab_cli.commands` for
the commands.

Security (same inputs as the gRPC backend):

* TLS with the backend's certificate (``GRPC_TLS_*`` resolution of weightslab-auth) when
  ``GRPC_TLS_ENABLED``; the client verifies it with the CA.
* Tokens: ``GRPC_AUTH_TOKEN``/``GRPC_AUTH_TOKENS``, else the token file that
  ``weightslab certs init`` wrote in the cert dir, exactly as for gRPC. With a token the first
  command must be ``auth <token>`` (constant-time comparison; tokens are never logged).
* TLS on but no token at all: every peer, loopback included, must present a client
  certificate signed by the CA (``GRPC_TLS_REQUIRE_CLIENT_AUTH``, as for gRPC). With client auth
  off a loopback bind trusts local peers (as with TLS off) and a non-loopback one is refused.
* A non-loopback ``CLI_HOST`` is refused when neither TLS nor a token protects the server.
* Before authentication a connection has an absolute deadline (:data:`PREAUTH_DEADLINE`, TLS
  handshake included: dripping one byte now and then does not extend it), at most
  :data:`MAX_CONNECTIONS_PER_PEER` connections per peer host are accepted, and the greeting
  names neither the experiment nor the version (the ``auth`` reply does).
* Unauthenticated commands are refused and count toward ``MAX_AUTH_FAILURES``; failures are
  audited rate-limited per peer host (:mod:`weightslab.auth_failures`).
"""

from __future__ import annotations

import atexit
import errno
import ipaddress
import logging
import os
import socket
import ssl
import threading
import time
import weakref
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from weightslab.auth_failures import AuthFailureAggregator, FailureReport, audit_fields
from weightslab.config.fields import is_loopback_host
from weightslab.security import ServerSecurity, TokenSet

from weightslab_cli import __version__
from weightslab_cli.audit import audit_event
from weightslab_cli.commands import CommandContext, Session, dispatch
from weightslab_cli.discovery import default_discovery_file, remove_discovery_if_owner, write_discovery
from weightslab_cli.protocol import (
    GREETING,
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    ProtocolError,
    encode,
    parse_request,
)

log = logging.getLogger("weightslab.cli.server")

SERVICE_KEY = "cli"
HANDSHAKE_TIMEOUT = 10.0
PREAUTH_DEADLINE = 10.0  # seconds from accept to a successful auth (TLS handshake included)
MAX_CONNECTIONS = 64
MAX_CONNECTIONS_PER_PEER = 16
ACCEPT_POLL = 0.25  # the accept loop wakes this often to notice stop() and expired deadlines
MAX_AUTH_FAILURES = 5
PORT_SEARCH = 100
DISCOVERY_KWARG = "cli_discovery_file"


class CliServerError(RuntimeError):
    """The CLI server cannot start (message names the setting at fault)."""


# -- security inputs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Security:
    ssl_context: ssl.SSLContext | None
    tokens: TokenSet
    cert_file: Path | None = None
    ca_file: Path | None = None
    token_file: Path | None = None
    require_client_auth: bool = False  # GRPC_TLS_REQUIRE_CLIENT_AUTH
    client_cert_required: bool = False  # every peer must present a CA-signed certificate (no token)


def resolve_security(config: Any, pm: Any = None) -> Security:
    """TLS context and tokens from the ``weightslab_server_security`` hook (weightslab-auth:
    ``GRPC_TLS_*``, ``GRPC_AUTH_TOKEN(S)``); no TLS and no token when no plugin answers."""
    if pm is None:
        from weightslab.plugins import get_plugin_manager

        pm = get_plugin_manager()
    provided: ServerSecurity | None = pm.hook.weightslab_server_security(config=config)
    if provided is None:
        provided = ServerSecurity.insecure()
    return Security(provided.ssl_context, provided.tokens, provided.cert_file, provided.ca_file,
                    provided.token_file, require_client_auth=provided.require_client_auth)


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address (one rule with gRPC)."""
    return is_loopback_host(host)


def connect_host(bind_host: str) -> str:
    """The address a local client uses to reach a server bound to ``bind_host``."""
    if bind_host in ("", "0.0.0.0", "*"):
        return "127.0.0.1"
    if bind_host == "::":
        return "::1"
    return bind_host


# -- the server ----------------------------------------------------------------------------------


class CliServer:
    """A running CLI server: ``host``, ``port``, ``tls``; ``stop()`` closes everything."""

    def __init__(self, experiment: Any, *, host: str, port: int, security: Security,
                 avoid_port: int | None = None, discovery_file: Path | None = None) -> None:
        self.experiment = experiment
        self.bind_host = host
        self.security = security
        self.tls = security.ssl_context is not None
        self.auth_required = bool(security.tokens)
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._per_peer: dict[str, int] = {}
        self._preauth: dict[socket.socket, float] = {}  # raw socket -> monotonic deadline
        self.failures = AuthFailureAggregator(self._audit_failure, transport="cli")
        self._sock = self._bind(host, port, avoid_port)
        self._sock.settimeout(ACCEPT_POLL)  # accept() wakes up to notice stop() and expired deadlines
        self.port: int = self._sock.getsockname()[1]
        self.host = connect_host(host)
        self.discovery_file = discovery_file
        self._thread = threading.Thread(target=self._accept_loop, name="weightslab-cli-server", daemon=True)
        self._thread.start()
        if discovery_file is not None:
            self._write_discovery(discovery_file)
            atexit.register(_remove_at_exit, weakref.ref(self))

    # -- binding ------------------------------------------------------------------------
    @staticmethod
    def _socket(host: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if host not in ("", "0.0.0.0", "::", "*") and ":" not in host:
            try:
                ipaddress.ip_address(host)
            except ValueError:  # a host name: bind its first address
                family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("" if host in ("*",) else host, port))
            sock.listen(32)
        except BaseException:
            sock.close()
            raise
        return sock

    def _bind(self, host: str, port: int, avoid_port: int | None) -> socket.socket:
        if port == 0:
            return self._socket(host, 0)
        clash = avoid_port is not None and avoid_port == port
        if not clash:
            try:
                return self._socket(host, port)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise CliServerError(f"CLI_PORT={port} is already in use on CLI_HOST={host!r}: "
                                         "choose another CLI_PORT (0 = any free port; or cli_port=..., "
                                         "`weightslab demo --cli-port 0`)") from None
                raise CliServerError(f"cannot bind the CLI server to CLI_HOST={host!r} CLI_PORT={port}: "
                                     f"{exc.strerror or exc}") from None
        for candidate in range(port + 1, min(port + 1 + PORT_SEARCH, 65536)):
            if candidate == avoid_port:
                continue
            try:
                sock = self._socket(host, candidate)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise CliServerError(f"cannot bind the CLI server to CLI_HOST={host!r}: "
                                     f"{exc.strerror or exc}") from None
            log.warning("CLI_PORT=%d is the gRPC server's port: the CLI server listens on %d instead "
                        "(advertised in the discovery file)", port, candidate)
            return sock
        raise CliServerError(f"CLI_PORT={port} is the gRPC server's port and no free port was found in "
                             f"{port + 1}..{port + PORT_SEARCH}: set CLI_PORT to a free port")

    # -- discovery ----------------------------------------------------------------------
    def discovery_info(self) -> dict[str, Any]:
        sec = self.security
        return {
            "host": self.host, "bind_host": self.bind_host, "port": self.port, "tls": self.tls,
            "auth": self.auth_required, "pid": os.getpid(), "protocol": PROTOCOL_VERSION,
            "version": __version__, "experiment": getattr(self.experiment, "name", ""),
            "root_log_dir": str(getattr(self.experiment, "root_log_dir", "")),
            "ca_file": str(sec.ca_file) if sec.ca_file else None,
            "token_file": str(sec.token_file) if sec.token_file and self.auth_required else None,
            "client_cert": sec.client_cert_required,  # clients must present a certificate of the CA
            "started_at": datetime.now(UTC).isoformat(),
        }

    def _write_discovery(self, path: Path) -> None:
        try:
            write_discovery(path, self.discovery_info())
        except OSError as exc:
            log.warning("could not write the CLI discovery file %s: %s", path, exc)
            self.discovery_file = None
            return
        log.info("CLI server discovery file: %s", path)

    def _remove_discovery(self) -> None:
        if self.discovery_file is not None:
            remove_discovery_if_owner(self.discovery_file, port=self.port)

    # -- lifecycle ----------------------------------------------------------------------
    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            _close(conn)
        self._thread.join(timeout=5)
        self.failures.stop()
        self._remove_discovery()
        log.info("CLI server on port %d stopped", self.port)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            self._expire_preauth()
            try:
                conn, addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            conn.settimeout(None)
            host = str(addr[0])
            with self._conns_lock:
                if len(self._conns) >= MAX_CONNECTIONS:
                    refused = f"too many connections (max {MAX_CONNECTIONS})"
                elif self._per_peer.get(host, 0) >= MAX_CONNECTIONS_PER_PEER:
                    refused = f"too many connections from {host} (max {MAX_CONNECTIONS_PER_PEER} per peer)"
                else:
                    refused = ""
                    self._conns.add(conn)
                    self._per_peer[host] = self._per_peer.get(host, 0) + 1
                    self._preauth[conn] = time.monotonic() + PREAUTH_DEADLINE
            if refused:
                log.info("CLI connection from %s:%s refused: %s", host, addr[1], refused)
                try:
                    conn.settimeout(1.0)
                    conn.sendall(encode({"ok": False, "error": refused}))
                except OSError:
                    pass
                _close(conn)
                continue
            threading.Thread(target=self._serve_connection, args=(conn, addr), daemon=True,
                             name=f"weightslab-cli-conn-{addr[1]}").start()

    def _expire_preauth(self) -> None:
        """Cut connections still unauthenticated at their deadline (a blocked read wakes up)."""
        now = time.monotonic()
        with self._conns_lock:
            expired = [raw for raw, deadline in self._preauth.items() if deadline <= now]
            for raw in expired:
                del self._preauth[raw]
        for raw in expired:
            log.info("CLI connection %s: not authenticated within %gs, closing", _peer_of(raw), PREAUTH_DEADLINE)
            try:
                raw.shutdown(socket.SHUT_RDWR)  # the connection thread's read returns; it closes
            except OSError:
                pass

    def _authenticated(self, raw: socket.socket) -> None:
        with self._conns_lock:
            self._preauth.pop(raw, None)

    # -- one connection -----------------------------------------------------------------
    def _serve_connection(self, raw: socket.socket, addr: Any) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        conn = raw
        try:
            if self.security.ssl_context is not None:
                raw.settimeout(HANDSHAKE_TIMEOUT)
                try:
                    conn = self.security.ssl_context.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    log.info("CLI connection from %s: TLS handshake failed: %s", peer, exc)
                    return
                conn.settimeout(None)
                with self._conns_lock:
                    self._conns.discard(raw)
                    self._conns.add(conn)
                if self.security.client_cert_required and not conn.getpeercert():
                    self.failures.failure("connect", peer, "no client certificate")
                    conn.sendall(encode({"ok": False, "error": "a client certificate signed by the server's CA "
                                                               "is required"}))
                    return
                if self.security.client_cert_required:
                    self._authenticated(raw)  # the certificate is the authentication
            self._session(conn, raw, peer)
        except OSError:
            pass  # the client went away (or the pre-auth deadline cut the connection)
        except Exception:
            log.exception("CLI connection from %s failed", peer)
        finally:
            with self._conns_lock:
                self._conns.discard(raw)
                self._conns.discard(conn)
                self._preauth.pop(raw, None)
                host = str(addr[0])
                left = self._per_peer.get(host, 0) - 1
                if left > 0:
                    self._per_peer[host] = left
                else:
                    self._per_peer.pop(host, None)
            _close(conn)

    def identity(self) -> dict[str, Any]:
        """What the server tells an authenticated client about itself (never before auth)."""
        return {"version": __version__, "experiment": getattr(self.experiment, "name", "")}

    def _session(self, conn: socket.socket, raw: socket.socket, peer: str) -> None:
        reader = conn.makefile("rb")
        session = Session(peer=peer, authenticated=not self.auth_required)
        ctx = CommandContext(self.experiment, session)
        greeting: dict[str, Any] = {
            "ok": True, "greeting": GREETING, "protocol": PROTOCOL_VERSION, "auth_required": self.auth_required,
            "tls": self.tls, "max_line_bytes": MAX_LINE_BYTES,
        }
        if session.authenticated:
            self._authenticated(raw)
            greeting.update(self.identity())
        conn.sendall(encode(greeting))
        log.debug("CLI client connected from %s", peer)
        while not self._stop.is_set() and not session.closing:
            line, oversized = _read_line(reader)
            if line is None:
                return
            if oversized:
                reply: dict[str, Any] = {"ok": False, "error": f"line too long (max {MAX_LINE_BYTES} bytes)"}
            else:
                reply = self._handle(ctx, line)
            if session.authenticated:
                self._authenticated(raw)
            conn.sendall(encode(reply))
            if session.failed_auth >= MAX_AUTH_FAILURES:
                log.info("CLI client %s: %d failed auth attempts, closing", peer, session.failed_auth)
                return

    def _handle(self, ctx: CommandContext, line: bytes) -> dict[str, Any]:
        try:
            req = parse_request(line)
        except ProtocolError as exc:
            return {"ok": False, "error": str(exc)}
        session = ctx.session
        if req.name == "auth":
            reply = self._auth(ctx, req.args[0] if req.args else req.rest.strip())
        elif not session.authenticated and req.name not in ("quit", "exit"):
            reply = {"ok": False, "error": "authentication required: send 'auth <token>' first"}
            # Counts toward MAX_AUTH_FAILURES (probing without a token is not unlimited) and is
            # audited (rate-limited) like a gRPC call without a token.
            session.failed_auth += 1
            self.failures.failure(req.name[:64], session.peer, "no token")
        else:
            reply = dispatch(ctx, req)
        if req.id is not None:
            reply["id"] = req.id
        return reply

    def _auth(self, ctx: CommandContext, token: str) -> dict[str, Any]:
        from weightslab.config import fingerprint

        session = ctx.session
        if not self.auth_required:
            session.authenticated = True
            return {"ok": True, "authenticated": True, "note": "this server requires no token", **self.identity()}
        if token and self.security.tokens.matches(token):
            session.authenticated = True
            session.token_fingerprint = fingerprint(token)
            return {"ok": True, "authenticated": True, **self.identity()}
        session.failed_auth += 1
        # A rejected token is never fingerprinted: its fingerprint would help test guesses offline.
        self.failures.failure("auth", session.peer, "invalid token" if token else "no token")
        return {"ok": False, "error": "invalid token"}

    def _audit_failure(self, report: FailureReport) -> None:
        audit_event(self.experiment, "auth_failure", **audit_fields(report))


def _peer_of(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"


def _remove_at_exit(ref: weakref.ReferenceType[CliServer]) -> None:
    server = ref()
    if server is not None:
        server._remove_discovery()


def _read_line(reader: BinaryIO) -> tuple[bytes | None, bool]:
    """``(line, oversized)``; ``(None, False)`` at EOF. An oversized line is drained."""
    data = reader.readline(MAX_LINE_BYTES + 1)
    if not data:
        return None, False
    if data.endswith(b"\n"):
        return data.rstrip(b"\r\n"), False
    if len(data) <= MAX_LINE_BYTES:
        return data, False  # last line without a newline
    while True:  # drain the rest of the oversized line
        more = reader.readline(MAX_LINE_BYTES + 1)
        if not more or more.endswith(b"\n"):
            return b"", True


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


# -- starting from the experiment ----------------------------------------------------------------


def discovery_path(experiment: Any) -> Path | None:
    """``serve_options['cli_discovery_file']`` (``False``/``""`` = none) or this process's own entry
    ``~/.weightslab/cli/<pid>.json`` (two runs never share, overwrite or delete one entry)."""
    option = getattr(experiment, "serve_options", {}).get(DISCOVERY_KWARG)
    if option is False or option == "":
        return None
    if option is None:
        return default_discovery_file()
    return Path(os.path.expandvars(str(option))).expanduser()


def start_cli_server(experiment: Any, config: Any = None, *, discovery_file: Path | None | bool = True) -> CliServer:
    """Start the CLI server of ``experiment`` and publish it in ``experiment.services['cli']``."""
    import weightslab.query  # noqa: F401  # loaded with the server (before training), not on the first query
    config = config if config is not None else experiment.config
    cli = config["cli"]
    security = resolve_security(config, getattr(experiment, "pm", None))
    if not is_loopback(cli.host) and security.ssl_context is None and not security.tokens:
        raise CliServerError(
            f"CLI_HOST={cli.host!r} is not a loopback address and the CLI server would be unprotected "
            "(no TLS: GRPC_TLS_ENABLED is off or weightslab-auth is not installed; no token: "
            "GRPC_AUTH_TOKEN/GRPC_AUTH_TOKENS unset). Set CLI_HOST=127.0.0.1, enable TLS, or set a token.")
    if not is_loopback(cli.host) and security.ssl_context is not None and not security.tokens:
        # TLS encrypts but authenticates nobody: without a token, a non-loopback server asks for
        # client certificates signed by the CA (mTLS, as the gRPC backend does) or refuses to start.
        if not security.require_client_auth or security.ca_file is None:
            raise CliServerError(
                f"CLI_HOST={cli.host!r} is not a loopback address and no client is authenticated: no token "
                "(GRPC_AUTH_TOKEN/GRPC_AUTH_TOKENS unset, no token file in GRPC_TLS_CERT_DIR) and no client "
                "certificates (GRPC_TLS_REQUIRE_CLIENT_AUTH=0 or no CA file). Set GRPC_AUTH_TOKEN, enable "
                "GRPC_TLS_REQUIRE_CLIENT_AUTH, or CLI_HOST=127.0.0.1.")
    if security.ssl_context is not None and not security.tokens and security.require_client_auth \
            and security.ca_file is not None:
        # TLS encrypts but authenticates nobody: without any token every peer, loopback included
        # (another local user is a loopback peer too), must present a certificate signed by the CA,
        # exactly as the gRPC backend's mTLS asks. Verified when presented and required by the
        # server, which can then answer a clear error instead of failing the handshake.
        security.ssl_context.verify_mode = ssl.CERT_OPTIONAL
        security.ssl_context.load_verify_locations(cafile=str(security.ca_file))
        security = replace(security, client_cert_required=True)
        log.info("CLI server on CLI_HOST=%r without a token: clients need a certificate signed by %s",
                 cli.host, security.ca_file)
    grpc = getattr(experiment, "services", {}).get("grpc")
    grpc_port = getattr(grpc, "port", None)
    path = discovery_path(experiment) if discovery_file is True else (discovery_file or None)
    server = CliServer(experiment, host=cli.host, port=cli.port, security=security,
                       avoid_port=grpc_port if isinstance(grpc_port, int) else None,
                       discovery_file=path if isinstance(path, Path) else None)
    experiment.services[SERVICE_KEY] = server
    log.info("CLI server listening on %s:%d (%s, %s)", cli.host, server.port, "TLS" if server.tls else "no TLS",
             "token required" if server.auth_required else "no token")
    if not server.tls:
        if not is_loopback(cli.host):
            log.warning("CLI server on CLI_HOST=%r without TLS: commands and the token travel in clear text",
                        cli.host)
    return server
