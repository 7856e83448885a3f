"""``weightslab cli``: talk to a running experiment's CLI server.

Finds the server through its discovery entry (``~/.weightslab/cli/<pid>.json``, one per
process; ``--list`` shows the live ones; with several, ``--pid`` picks one, a terminal asks
which and anything else fails listing them), connects with TLS
when the server uses it (CA: ``--ca``, ``GRPC_TLS_CA_FILE``, the discovery file's ``ca_file``,
then ``<GRPC_TLS_CERT_DIR>/ca.crt``) and authenticates with ``GRPC_AUTH_TOKEN`` (or the first
of ``GRPC_AUTH_TOKENS``, or the ``.grpc_auth_token`` file of the cert dir) when it asks.

``weightslab cli`` alone opens an interactive prompt with history; ``weightslab cli status``,
``weightslab cli query 'loss > 2'``, ``weightslab cli tag noisy --query "loss > 2"`` run one
command and exit (status 1, the error on stderr, when the server answers ``ok: false``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from weightslab_cli.discovery import live_entries, pid_alive, read_discovery
from weightslab_cli.protocol import MAX_LINE_BYTES, decode_reply, encode

DEFAULT_TIMEOUT = 30.0
HISTORY_FILE = Path(".weightslab") / "cli_history"


class ClientError(click.ClickException):
    """Cannot reach or talk to the server (message says what to do)."""


@dataclass
class Target:
    host: str
    port: int
    tls: bool | None  # None: unknown (no discovery file): try what the local config says
    ca_file: Path | None
    token: str | None
    source: str
    cert_file: Path | None = None  # client certificate (mTLS), for servers that ask for one
    key_file: Path | None = None


class CliClient:
    """A connection to a CLI server: ``request("status")`` → the reply dict."""

    def __init__(self, host: str, port: int, *, tls: bool = False, ca_file: Path | None = None,
                 token: str | None = None, timeout: float = DEFAULT_TIMEOUT, cert_file: Path | None = None,
                 key_file: Path | None = None) -> None:
        self.host, self.port = host, port
        raw = socket.create_connection((host, port), timeout=timeout)
        sock: socket.socket = raw
        try:
            if tls:
                context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                if cert_file is not None:
                    context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
                sock = context.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise
        self.sock = sock
        self.reader = sock.makefile("rb")
        self._next_id = 0
        try:
            self.greeting = self._read()
        except (ClientError, ValueError, OSError) as exc:  # EOF, binary frames, reset: not our protocol
            self.close()
            raise ClientError(not_a_cli_server(host, port, timeout, str(exc))) from None
        if self.greeting.get("ok") is False and self.greeting.get("error"):
            self.close()
            hint = " (use --cert/--key)" if "certificate" in str(self.greeting["error"]) else ""
            raise ClientError(f"{host}:{port} refused the connection: {self.greeting['error']}{hint}")
        if self.greeting.get("greeting") != "weightslab-cli":
            self.close()
            raise ClientError(f"{host}:{port} is not a WeightsLab CLI server")
        self.authenticated = not self.greeting.get("auth_required")
        if not self.authenticated and token:
            reply = self.send({"cmd": "auth", "args": [token]})
            if not reply.get("ok"):
                self.close()
                raise ClientError(f"authentication failed: {reply.get('error')} (check GRPC_AUTH_TOKEN)")
            self.authenticated = True
            # The server names the experiment and its version only after authentication.
            self.greeting.update({k: reply[k] for k in ("experiment", "version") if k in reply})

    def _read(self) -> dict[str, Any]:
        line = self.reader.readline(16 * MAX_LINE_BYTES)
        if not line:
            raise ClientError("the server closed the connection")
        return decode_reply(line)

    def send(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.sock.sendall(encode(obj))
        return self._read()

    def request(self, command: str | list[str]) -> dict[str, Any]:
        """One command: a command line (``"query loss > 2"``) or its words (``["query", "loss", ">", "2"]``)."""
        self._next_id += 1
        if isinstance(command, str):
            return self.send({"command": command, "id": self._next_id})
        return self.send({"cmd": command[0], "args": list(command[1:]), "id": self._next_id})

    def close(self) -> None:
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> CliClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- a port that is not a CLI server ----------------------------------------------------------------

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HTTP2_SETTINGS_FRAME = 4  # the type byte of the frame every HTTP/2 server sends first


def speaks_http2(host: str, port: int, timeout: float = 5.0) -> bool:
    """True when ``host:port`` answers HTTP/2 (a gRPC server): over TLS its ALPN picks ``h2``;
    in clear text it answers the client preface with a SETTINGS frame. A probe only: it sends no
    token and verifies no certificate."""
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 5.0)) as raw:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2"])
            try:
                with context.wrap_socket(raw, server_hostname=host) as tls:
                    return tls.selected_alpn_protocol() == "h2"
            except (ssl.SSLError, OSError):
                pass
        with socket.create_connection((host, port), timeout=min(timeout, 5.0)) as plain:
            plain.sendall(HTTP2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            head = plain.recv(9)
            return len(head) >= 4 and head[3] == HTTP2_SETTINGS_FRAME
    except OSError:
        return False


def _grpc_hint(host: str, port: int, timeout: float) -> str:
    if not speaks_http2(host, port, timeout):
        return ""
    return (f"{host}:{port} answers gRPC (HTTP/2), not the WeightsLab CLI protocol: it is the run's gRPC "
            "port. Serve the CLI too, wl.serve(serving_grpc=True, serving_cli=True), keep the process alive "
            "(wl.keep_serving()), then run `weightslab cli --list`; or pass the CLI server's --port / "
            "--discovery-file")


def not_a_cli_server(host: str, port: int, timeout: float, detail: str) -> str:
    """Why ``host:port`` gave no CLI greeting, and what to do."""
    return _grpc_hint(host, port, timeout) or (
        f"{host}:{port} is not a WeightsLab CLI server ({detail}): check --port, or find the run's CLI "
        "server with `weightslab cli --list`")


# -- finding the server --------------------------------------------------------------------------


def _local_config() -> Any:
    from weightslab.config import ConfigError
    from weightslab.settings import load_config

    try:
        return load_config(validate=False)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _auth_defaults(config: Any) -> tuple[Path | None, Path | None, Path | None, str | None]:
    """``(explicit CA, default CA, token file, token)`` from the local auth settings."""
    if "auth" not in config:
        return None, None, None, None
    auth = config["auth"]
    cert_dir = Path(auth.cert_dir).expanduser()
    explicit_ca = Path(auth.ca_file).expanduser() if auth.ca_file is not None else None
    token = auth.auth_token or (auth.auth_tokens[0] if auth.auth_tokens else None)
    return explicit_ca, cert_dir / "ca.crt", cert_dir / ".grpc_auth_token", token


def _default_client_cert(config: Any) -> tuple[Path | None, Path | None]:
    """The dev PKI's client certificate (``<cert dir>/envoy-client.{crt,key}``) when both exist."""
    if "auth" not in config:
        return None, None
    cert_dir = Path(config["auth"].cert_dir).expanduser()
    cert, key = cert_dir / "envoy-client.crt", cert_dir / "envoy-client.key"
    return (cert, key) if cert.is_file() and key.is_file() else (None, None)


def _read_token(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def describe_entry(path: Path, info: dict[str, Any]) -> str:
    return (f"pid {info.get('pid')} experiment {info.get('experiment')!r} on {info.get('host')}:{info.get('port')} "
            f"(started {info.get('started_at', '?')}; --discovery-file {path})")


def _choose_entry(entries: list[tuple[Path, dict[str, Any]]]) -> tuple[Path, dict[str, Any]]:
    """Several live runs: ask on a terminal, else an error listing them (never a guess)."""
    listed = "\n".join(f"  {i}. {describe_entry(p, info)}" for i, (p, info) in enumerate(entries, 1))
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise ClientError(f"{len(entries)} runs serve a CLI server; choose one with --pid PID, "
                          f"--discovery-file PATH or --port PORT:\n{listed}")
    click.echo(f"{len(entries)} runs serve a CLI server:\n{listed}", err=True)
    choice = click.prompt(f"which one (1-{len(entries)})", type=click.IntRange(1, len(entries)), err=True)
    return entries[choice - 1]


def _entry_of_pid(pid: int) -> tuple[Path, dict[str, Any]]:
    """``--pid``: the live entry of that process, else an error listing the live ones."""
    entries = live_entries()
    for path, info in entries:
        if info.get("pid") == pid:
            return path, info
    listed = "".join(f"\n  {describe_entry(p, info)}" for p, info in entries) or " none"
    raise ClientError(f"--pid {pid}: no live run of that process serves a CLI server; live runs:{listed}")


def target_from_options(host: str | None, port: int | None, discovery_file: Path | None, ca: Path | None,
                        pid: int | None, cert: Path | None, key: Path | None) -> Target:
    """The run a command's connection options name (``weightslab cli`` and ``export labels``)."""
    if (cert is None) != (key is None):
        raise click.UsageError("--cert and --key go together")
    if pid is not None and (port is not None or discovery_file is not None):
        raise click.UsageError("--pid picks a run by its process: give it without --port / --discovery-file")
    target = resolve_target(host, port, discovery_file, ca, pid)
    if cert is not None:
        target = dataclasses.replace(target, cert_file=cert, key_file=key)
    return target


def resolve_target(host: str | None, port: int | None, discovery_file: Path | None, ca: Path | None,
                   pid: int | None = None) -> Target:
    config = _local_config()
    explicit_ca, default_ca, default_token_file, token = _auth_defaults(config)
    path = discovery_file
    info: dict[str, Any] = {}
    if port is None and discovery_file is not None:
        try:
            info = read_discovery(discovery_file)
        except FileNotFoundError:
            raise ClientError(f"discovery file {discovery_file} not found") from None
        except (OSError, ValueError) as exc:
            raise ClientError(f"cannot read the discovery file {discovery_file}: {exc}") from None
        if info and not pid_alive(info.get("pid")):
            click.echo(f"warning: {discovery_file} names process {info.get('pid')}, which is not running "
                       "(stale discovery file)", err=True)
    elif port is None and pid is not None:
        path, info = _entry_of_pid(pid)
    elif port is None:
        entries = live_entries()
        if len(entries) == 1:
            path, info = entries[0]
        elif entries:
            path, info = _choose_entry(entries)
    if info:
        source = f"discovery file {path}"
        host = host or str(info.get("host") or "127.0.0.1")
        port = int(info["port"])
        tls: bool | None = bool(info.get("tls"))
        discovered_ca = Path(info["ca_file"]) if info.get("ca_file") else None
        token_file = Path(info["token_file"]) if info.get("token_file") else None
    else:
        from weightslab_cli.server import connect_host

        cli = config["cli"]
        source = "CLI_HOST/CLI_PORT" if port is None else "--port"
        host = host or connect_host(cli.host)
        port = port if port is not None else int(cli.port)
        tls = None
        discovered_ca = token_file = None
    ca_file = ca or explicit_ca or discovered_ca or default_ca
    if token is None:
        token = _read_token(token_file) or _read_token(default_token_file)
    # A server without any token asks every client for a certificate of its CA: present the dev
    # PKI's client certificate by default (--cert/--key choose another).
    cert_file, key_file = _default_client_cert(config) if info.get("client_cert") else (None, None)
    return Target(host, port, tls, ca_file, token, source, cert_file, key_file)


def connect(target: Target, timeout: float = DEFAULT_TIMEOUT) -> CliClient:
    tls = target.tls
    if tls is None:  # no discovery file: follow the local TLS setting
        config = _local_config()
        tls = "auth" in config and bool(config["auth"].tls_enabled)
    if tls and target.ca_file is not None and not Path(target.ca_file).is_file():
        raise ClientError(f"CA file not found: {target.ca_file} (use --ca or GRPC_TLS_CA_FILE)")
    try:
        return CliClient(target.host, target.port, tls=tls, ca_file=target.ca_file if tls else None,
                         token=target.token, timeout=timeout, cert_file=target.cert_file if tls else None,
                         key_file=target.key_file if tls else None)
    except ssl.SSLError as exc:
        grpc = _grpc_hint(target.host, target.port, timeout)
        raise ClientError(grpc or f"TLS with {target.host}:{target.port} failed: {exc.reason or exc} "
                                  f"(CA file: {target.ca_file}; use --ca or GRPC_TLS_CA_FILE)") from None
    except FileNotFoundError as exc:
        # ssl reports no file name for a missing CA file: name the path the client tried
        missing = exc.filename or target.ca_file
        raise ClientError(f"CA file not found: {missing} (use --ca or GRPC_TLS_CA_FILE)") from None
    except OSError as exc:
        raise ClientError(f"no CLI server at {target.host}:{target.port} ({target.source}): "
                          f"{exc.strerror or exc}. Is a run with wl.serve(serving_cli=True) "
                          "(or `weightslab demo`) running? `weightslab cli --list` shows the live ones") from None


# -- rendering -------------------------------------------------------------------------------------

PREFERRED_COLUMNS = ("sample_id", "split", "label", "prediction", "loss", "suspected_mislabel",
                     "discarded", "tags")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) < 1e6 else f"{value:.4g}"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _row_columns(rows: list[dict[str, Any]], extra: list[str]) -> list[str]:
    present = set().union(*(r.keys() for r in rows)) if rows else set()
    columns = [c for c in PREFERRED_COLUMNS if c in present]
    for name in extra:
        if name in present and name not in columns:
            columns.insert(max(len(columns) - 2, 0), name)
    return columns


def _add_row(table: Any, *cells: str) -> None:
    """Cells are plain text, never rich markup (sample ids, tags and errors may contain brackets)."""
    from rich.text import Text

    table.add_row(*(Text(c) for c in cells))


def rejected_line(key: str, edit: dict[str, Any]) -> str:
    """An edit the loop refused when applying it (the old value stayed), in one line."""
    return (f"{key}: requested {edit.get('value')!r} rejected when applied ({edit.get('reason')}); "
            f"kept {edit.get('kept')!r}")


def _render_answer(answer: dict[str, Any], console: Any) -> None:
    """The query agent's answer: its text, the plan, then the rows or groups it found."""
    from rich.table import Table

    console.print(str(answer.get("answer", "")), markup=False, highlight=False)
    console.print(f"plan: {answer.get('plan_text', '')}", markup=False, highlight=False)
    rows, groups = answer.get("rows") or [], answer.get("groups") or []
    if rows:
        columns = _row_columns(rows, [c for c in rows[0] if c not in PREFERRED_COLUMNS])
        table = Table(*columns)
        for row in rows:
            _add_row(table, *[_fmt(row.get(c)) for c in columns])
        console.print(table)
    elif groups:
        keys, values = list(groups[0]["key"]), list(groups[0]["values"])
        table = Table(*keys, "count", *values)
        for g in groups:
            _add_row(table, *[_fmt(g["key"][k]) for k in keys], str(g["count"]), *[_fmt(g["values"][v]) for v in values])
        console.print(table)
    elif answer.get("sample_ids"):
        ids = [str(i) for i in answer["sample_ids"]]
        more = f" ... ({len(ids) - 20} more)" if len(ids) > 20 else ""
        console.print("samples: " + ", ".join(ids[:20]) + more, markup=False, highlight=False)


def _when(value: Any) -> str:
    """An epoch timestamp as local ``YYYY-MM-DD HH:MM:SS`` (``-`` when unset)."""
    from datetime import datetime

    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        return "-"
    return datetime.fromtimestamp(float(value)).strftime("%Y-%m-%d %H:%M:%S")


EVAL_FIELDS = ("state", "split", "tags", "eval_fn", "progress", "batches", "samples", "started", "finished",
               "elapsed", "message", "step", "id")


def _render_evaluation(ev: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    shown = dict(ev)
    shown["progress"] = f"{float(ev.get('progress') or 0.0) * 100:.0f}%"
    if "batches_total" in ev:
        shown["batches"] = f"{ev.get('batches_done')}/{ev.get('batches_total')}"
        shown["samples"] = f"{ev.get('samples_done')}/{ev.get('samples_total')}"
    shown["started"], shown["finished"] = _when(ev.get("started")), _when(ev.get("finished"))
    if isinstance(ev.get("elapsed_seconds"), (int, float)):
        shown["elapsed"] = f"{float(ev['elapsed_seconds']):.1f}s"
    table = Table("field", "value", title="evaluation")
    for key in EVAL_FIELDS:
        if key in shown and shown[key] not in (None, "", []):
            _add_row(table, key, _fmt(shown[key]))
    for name, value in sorted(dict(ev.get("metrics") or {}).items()):
        _add_row(table, f"metric {name}", _fmt(value))
    console.print(table)


def render(reply: dict[str, Any], command: str, console: Any, err_console: Any = None) -> None:
    """Human-readable rendering of a reply (``--json`` prints the reply itself); an error goes to
    ``err_console`` (stderr)."""
    from rich.table import Table

    if not reply.get("ok"):
        from rich.markup import escape

        (err_console or console).print(f"[red]error:[/red] {escape(str(reply.get('error')))}", highlight=False)
        return
    body = {k: v for k, v in reply.items() if k not in ("ok", "id")}
    for line in [body.pop("note")] if body.get("note") else []:
        console.print(f"note: {line}", markup=False, highlight=False)
    for line in body.pop("notes", None) or []:
        console.print(f"note: {line}", markup=False, highlight=False)
    if "commands" in body:
        table = Table("command", "usage", "description")
        for name, info in body["commands"].items():
            _add_row(table, name, info["usage"], info["help"])
        console.print(table)
        if body.get("details"):
            console.print(str(body["details"]), markup=False, highlight=False)
    elif isinstance(body.get("evaluation"), dict):
        _render_evaluation(body["evaluation"], console)
    elif "status" in body:
        table = Table("field", "value", title="status")
        for key, value in body["status"].items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) or "-"
            _add_row(table, key, _fmt(value))
        console.print(table)
    elif "hyperparameters" in body:
        hps = body["hyperparameters"]
        table = Table("key", "applied", "pending", title="hyperparameters")
        for key in sorted(set(hps.get("applied", {})) | set(hps.get("pending", {}))):
            _add_row(table, key, _fmt(hps["applied"].get(key)), _fmt(hps.get("pending", {}).get(key)))
        console.print(table)
        for key, edit in sorted((hps.get("rejected") or {}).items()):
            console.print(rejected_line(key, edit), markup=False, highlight=False)
    elif isinstance(body.get("rejected"), dict) and "key" in body:  # hp get <key>
        for key, value in body.items():
            if key != "rejected":
                console.print(f"{key}: {_fmt(value)}", highlight=False, markup=False)
        console.print(rejected_line(str(body["key"]), body["rejected"]), markup=False, highlight=False)
    elif isinstance(body.get("answer"), dict) and "plan_text" in body["answer"]:
        _render_answer(body["answer"], console)
    elif isinstance(body.get("agent_history"), list):
        table = Table("time", "kind", "text", title="agent history")
        for entry in body["agent_history"]:
            _add_row(table, str(entry.get("timestamp", "")), str(entry.get("kind", "")), str(entry.get("text", "")))
        console.print(table)
    elif isinstance(body.get("agent_models"), dict):
        models = body["agent_models"]
        table = Table("model", "name", "description", title=f"models (current: {models.get('current')})")
        for m in models.get("models") or []:
            _add_row(table, str(m.get("id", "")), str(m.get("name", "")), str(m.get("description", "")))
        console.print(table)
    elif "groups" in body:
        groups = body["groups"]
        keys = list(groups[0]["key"]) if groups else []
        values = [v for v in (groups[0]["values"] if groups else []) if v != "count"]
        table = Table(*keys, "count", *values, title=f"{body.get('total_groups')} groups, {body.get('total')} rows")
        for g in groups:
            _add_row(table, *[_fmt(g["key"][k]) for k in keys], str(g["count"]), *[_fmt(g["values"][v]) for v in values])
        console.print(table)
    elif "rows" in body and not body["rows"]:
        # an empty result says so (a header-less empty table printed a blank line)
        total = body.get("total") or 0
        text = (f"0 of {body.get('table_rows', 0)} rows match" if not total
                else f"{total} rows match, none on this page (offset {body.get('offset')})")
        console.print(text, markup=False, highlight=False)
    elif "rows" in body:
        rows = body["rows"]
        words = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", str(body.get("query", "")) + " " + str(body.get("signal", "")))
        columns = _row_columns(rows, words)
        shown = len(rows)
        title = f"{shown} of {body.get('total')} rows"
        table = Table(*columns, title=title)
        for row in rows:
            _add_row(table, *[_fmt(row.get(c)) for c in columns])
        console.print(table)
    else:
        for key, value in body.items():
            if key == "sample_ids" and "samples" in body:
                continue  # shown as split:id (the same id can be in several splits)
            if key in ("sample_ids", "samples") and isinstance(value, list) and len(value) > 20:
                value = value[:20] + [f"... ({len(value) - 20} more)"]
            console.print(f"{key}: {_fmt(value) if not isinstance(value, dict) else json.dumps(value)}",
                          highlight=False, markup=False)


# -- the command -------------------------------------------------------------------------------------


def _history_path() -> Path:
    return Path("~").expanduser() / HISTORY_FILE


def interactive(client: CliClient, as_json: bool, console: Any) -> int:
    try:
        import readline
    except ImportError:  # pragma: no cover - Windows without pyreadline
        readline = None  # type: ignore[assignment]
    history = _history_path()
    if readline is not None:
        try:
            history.parent.mkdir(parents=True, exist_ok=True)
            readline.read_history_file(history)
        except OSError:
            pass
        readline.set_history_length(1000)
    greeting = client.greeting
    console.print(f"connected to {client.host}:{client.port} (experiment {greeting.get('experiment')!r}, "
                  f"{'TLS' if greeting.get('tls') else 'no TLS'}); 'help' lists the commands, 'quit' exits.",
                  highlight=False)
    try:
        while True:
            try:
                line = input("weightslab> ")
            except EOFError:
                console.print()
                break
            except KeyboardInterrupt:
                console.print()
                continue
            line = line.strip()
            if not line:
                continue
            reply = client.request(line)
            if as_json:
                click.echo(json.dumps(reply))
            else:
                render(reply, line, console, None)
            if reply.get("bye"):
                break
    finally:
        if readline is not None:
            try:
                readline.write_history_file(history)
            except OSError:
                pass
    return 0


@click.command("cli", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
               help="Talk to a running experiment: `weightslab cli` (interactive) or "
                    "`weightslab cli COMMAND ...` (one command, e.g. status, query 'loss > 2', "
                    "tag noisy --query 'loss > 2'; quote queries: an unquoted > redirects). "
                    "Client options go before the command; `weightslab cli help query` shows the query syntax.")
@click.option("--host", default=None, help="Server host (default: from the discovery file, else CLI_HOST).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Server port (default: from the discovery file, else CLI_PORT).")
@click.option("--discovery-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Discovery file written by the server (default: the one live entry of ~/.weightslab/cli/).")
@click.option("--pid", type=click.IntRange(min=1), default=None,
              help="The live run of this process (see --list), when several serve a CLI server.")
@click.option("--list", "list_runs", is_flag=True, help="List the live runs serving a CLI server, then exit.")
@click.option("--ca", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CA certificate verifying the server (default GRPC_TLS_CA_FILE / <cert dir>/ca.crt).")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Client certificate (PEM) for a server that requires one (e.g. envoy-client.crt).")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Private key of --cert (PEM).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds to wait for the server.")
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON replies.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def cli_command(host: str | None, port: int | None, discovery_file: Path | None, pid: int | None, list_runs: bool,
                ca: Path | None,
                cert: Path | None, key: Path | None, timeout: float, as_json: bool,
                command: tuple[str, ...]) -> None:
    from weightslab_cli.console import make_console

    console, err_console = make_console(), make_console(stderr=True)
    if list_runs:
        _list_runs(as_json, console)
        return
    target = target_from_options(host, port, discovery_file, ca, pid, cert, key)
    client = connect(target, timeout)
    with client:
        if not client.authenticated:
            raise ClientError("the server requires a token: set GRPC_AUTH_TOKEN (or keep the "
                              "`.grpc_auth_token` file in GRPC_TLS_CERT_DIR)")
        if not command:
            if not sys.stdin.isatty():
                # piped input: one command per line, replies as JSON lines
                code = 0
                for line in sys.stdin:
                    if line.strip():
                        reply = client.request(line.strip())
                        if as_json:
                            click.echo(json.dumps(reply))
                        else:
                            render(reply, line, console, err_console)
                        code = code or (0 if reply.get("ok") else 1)
                        if reply.get("bye"):
                            break
                raise SystemExit(code)
            raise SystemExit(interactive(client, as_json, console))
        # `weightslab cli 'query loss > 2'`: one quoted argument is a whole command line
        words = list(command)
        reply = client.request(words[0] if len(words) == 1 and " " in words[0].strip() else words)
    if as_json:
        click.echo(json.dumps(reply, indent=2))  # the machine-readable reply, ok: false included (exit 1)
    else:
        render(reply, " ".join(command), console, err_console)
    if not reply.get("ok"):
        raise SystemExit(1)


def _list_runs(as_json: bool, console: Any) -> None:
    """``weightslab cli --list``: the live discovery entries (stale ones are removed on the way)."""
    from rich.table import Table

    entries = live_entries()
    if as_json:
        click.echo(json.dumps([{"discovery_file": str(p), **info} for p, info in entries], indent=2))
        return
    if not entries:
        console.print("no live run serves a CLI server (start one with wl.serve(serving_cli=True) or "
                      "`weightslab demo`)", markup=False, highlight=False)
        return
    table = Table("pid", "experiment", "address", "tls", "started", "discovery file", title="live runs")
    for path, info in entries:
        _add_row(table, str(info.get("pid")), str(info.get("experiment", "")),
                 f"{info.get('host')}:{info.get('port')}", "yes" if info.get("tls") else "no",
                 str(info.get("started_at", "")), str(path))
    console.print(table)
