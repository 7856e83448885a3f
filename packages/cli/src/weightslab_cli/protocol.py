"""Wire format of the CLI inspection server: one JSON object per line, each direction.

Server → client: a greeting object first (the experiment's name and version only when no
authentication is required; else in the reply to ``auth``), then exactly one reply per request
line, each ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.

Client → server, one of::

    {"command": "tag noisy --query loss > 2", "id": 7}        # a command line as typed
    {"cmd": "tag", "args": ["noisy", "--query", "loss > 2"]}   # pre-split arguments
    tag noisy --query loss > 2                                  # a bare line (nc/openssl)

``id`` (any JSON value) is echoed back in the reply. Lines are UTF-8 and at most
:data:`MAX_LINE_BYTES` long.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 64 * 1024
GREETING = "weightslab-cli"


class ProtocolError(ValueError):
    """A request line that is not a valid request (the connection stays open)."""


@dataclass
class Request:
    name: str
    rest: str = ""  # the raw text after the command word
    id: Any = None
    args: list[str] | None = field(default=None)  # pre-split arguments ({"cmd", "args"} form)


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, paths and tuples converted; NaN/inf become ``None``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return jsonable(tolist())
    value_attr = getattr(value, "value", None)  # enums
    if isinstance(value_attr, (str, int)):
        return value_attr
    return str(value)


def encode(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(jsonable(obj), allow_nan=False, separators=(",", ":")) + "\n").encode()


def decode_reply(line: bytes | str) -> dict[str, Any]:
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ProtocolError("reply is not a JSON object")
    return data


def parse_request(line: bytes) -> Request:
    """A request from one line (without its newline); :class:`ProtocolError` if malformed."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("request is not valid UTF-8") from None
    text = text.strip()
    if not text:
        raise ProtocolError("empty request: send a JSON object such as {\"command\": \"help\"}")
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProtocolError(f"invalid JSON: {exc.msg} at position {exc.pos}") from None
        except RecursionError:
            raise ProtocolError("invalid JSON: nested too deeply (id: expected a string or a number)") from None
        if not isinstance(data, dict):
            raise ProtocolError("request must be a JSON object")
        req_id = data.get("id")
        if not (req_id is None or isinstance(req_id, (str, int, float))):  # bool is an int
            raise ProtocolError("id: expected a string or a number")
        _check_text(req_id, "id")
        if "command" in data:
            command = data["command"]
            if not isinstance(command, str):
                raise ProtocolError("command: expected a string")
            _check_text(command, "command")
            req = _from_text(command)
            req.id = req_id
            return req
        if "cmd" in data:
            name, args = data["cmd"], data.get("args", [])
            if not isinstance(name, str) or not name.strip():
                raise ProtocolError("cmd: expected a command name")
            _check_text(name, "cmd")
            if isinstance(args, str):
                args = [args]
            if not isinstance(args, list) or not all(isinstance(a, (str, int, float)) for a in args):
                raise ProtocolError("args: expected a list of strings")
            for i, arg in enumerate(args):
                _check_text(arg, f"args[{i}]")
            str_args = [str(a) for a in args]
            return Request(name.strip().lower(), shlex.join(str_args), req_id, str_args)
        raise ProtocolError("request needs a \"command\" (a command line) or a \"cmd\" (with \"args\")")
    return _from_text(text)


def _check_text(value: Any, field: str) -> None:
    """JSON ``\\uD800``-style escapes can smuggle lone surrogates into a ``str``: text that no
    store, log or audit file can encode. Refuse them here, naming the field."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError(f"{field}: contains a lone surrogate (\\ud800-\\udfff); "
                                "send valid Unicode text") from None


def _from_text(text: str) -> Request:
    text = text.strip()
    if not text:
        raise ProtocolError("command: empty")
    name, _, rest = text.partition(" ")
    return Request(name.strip().lower(), rest.strip())


def split_query_option(rest: str, args: list[str] | None = None) -> tuple[str, str | None]:
    """``(options before --query, query text)``; everything after ``--query`` is the query.

    A query given as one quoted token (``--query "loss > 2"``) is unquoted.
    """
    if args is not None:
        if "--query" not in args:
            return shlex.join(args), None
        i = args.index("--query")
        query = " ".join(args[i + 1:]) if len(args) > i + 2 else (args[i + 1] if len(args) > i + 1 else "")
        return shlex.join(args[:i]), query
    tokens_at = _find_option(rest, "--query")
    if tokens_at is None:
        return rest, None
    before, query = rest[:tokens_at].strip(), rest[tokens_at + len("--query"):].lstrip(" =\t")
    query = query.strip()
    try:
        parts = shlex.split(query)
    except ValueError:
        parts = []
    if len(parts) == 1 and query[:1] in "\"'" and query[-1:] == query[:1]:
        query = parts[0]
    return before, query


def _find_option(rest: str, option: str) -> int | None:
    """Offset of ``option`` as a whole word outside quotes, or ``None``."""
    quote = ""
    i = 0
    while i < len(rest):
        ch = rest[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif rest.startswith(option, i) and (i == 0 or rest[i - 1].isspace()):
            end = i + len(option)
            if end == len(rest) or rest[end].isspace() or rest[end] == "=":
                return i
        i += 1
    return None


def split_args(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ProtocolError(f"cannot split arguments: {exc}") from None
