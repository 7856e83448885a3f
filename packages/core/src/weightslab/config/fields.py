"""Typed setting descriptors: how one variable is parsed, validated and shown.

A section field is declared as ``Annotated[type, Setting(...)]``; the resolver reads
the ``Setting`` to know the variable name, the parser and where else it may come from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class InvalidValue(ValueError):
    """Raised by a parser; the resolver adds the variable name and the raw value."""


@dataclass(frozen=True)
class Parser:
    """Turns a raw value (a string from env/.env, or a Python value from a kwarg) into a typed one."""

    accepted: str
    convert: Callable[[Any], Any]
    clamp: tuple[float, float] | None = None

    def __call__(self, raw: Any) -> Any:
        return self.convert(raw)


@dataclass(frozen=True)
class Setting:
    """Metadata of one configuration variable."""

    env: str
    parser: Parser
    description: str = ""
    secret: bool = False
    config_key: str | None = None
    kwarg: str | None = None
    # ``weakens(value)`` is true when the value lowers security (TLS off, audit off, a CA or token
    # changed...): coming from a .env file, it is logged at WARNING with the file's path.
    weakens: Callable[[Any], bool] | None = None


def always(_value: Any) -> bool:
    """``Setting(weakens=always)``: any value from a .env file is worth a warning (CA, token...)."""
    return True


def is_false(value: Any) -> bool:
    return value is False


def is_true(value: Any) -> bool:
    return value is True


def _strip(raw: Any) -> Any:
    return raw.strip() if isinstance(raw, str) else raw


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise InvalidValue("expected a boolean")


boolean = Parser("a boolean: 1/true/yes/on or 0/false/no/off (any case)", _to_bool)


def _number(raw: Any, kind: type) -> float | int:
    if isinstance(raw, bool):
        raise InvalidValue("not a number")
    if isinstance(raw, (int, float)) and kind is float:
        if not math.isfinite(raw):
            raise InvalidValue("not a finite number")
        return float(raw)
    if isinstance(raw, int) and kind is int:
        return raw
    text = str(_strip(raw))
    try:
        value = kind(text)
    except ValueError:
        raise InvalidValue("not a number") from None
    if isinstance(value, float) and not math.isfinite(value):
        # "inf"/"nan" parse as floats but no setting means them (inf seconds overflows timeouts).
        raise InvalidValue("not a finite number")
    return value


def number(kind: type = float, *, minimum: float | None = None, exclusive_min: bool = False,
           maximum: float | None = None, accepted: str = "") -> Parser:
    def convert(raw: Any) -> Any:
        value = _number(raw, kind)
        if value != value:  # NaN
            raise InvalidValue("NaN")
        if minimum is not None and (value <= minimum if exclusive_min else value < minimum):
            raise InvalidValue("out of range")
        if maximum is not None and value > maximum:
            raise InvalidValue("out of range")
        return value

    return Parser(accepted, convert)


positive_seconds = number(float, minimum=0, exclusive_min=True, accepted="a positive number of seconds")
non_negative_seconds = number(float, minimum=0, accepted="a number of seconds >= 0")
positive_float = number(float, minimum=0, exclusive_min=True, accepted="a positive number")
positive_int = number(int, minimum=1, accepted="a positive integer")
non_negative_int = number(int, minimum=0, accepted="an integer >= 0")
port = number(int, minimum=1, maximum=65535, accepted="a TCP port number 1..65535")
# For listening sockets: 0 asks the OS for any free port (the bound port is logged/advertised).
port_or_zero = number(int, minimum=0, maximum=65535, accepted="a TCP port number 0..65535 (0 = any free port)")


def clamped_int(low: int, high: int) -> Parser:
    """An integer clamped into ``[low, high]``; the resolver warns when it clamps."""

    def convert(raw: Any) -> int:
        return int(_number(raw, int))

    return Parser(f"an integer (clamped to {low}..{high})", convert, clamp=(low, high))


def choice(*options: str, case_sensitive: bool = False) -> Parser:
    def convert(raw: Any) -> str:
        text = str(_strip(raw))
        for option in options:
            if text == option or (not case_sensitive and text.lower() == option.lower()):
                return option
        raise InvalidValue("not one of the options")

    return Parser("one of " + ", ".join(options), convert)


def _to_text(raw: Any) -> str:
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
        raise InvalidValue("expected text")
    return str(raw).strip()


text = Parser("text", _to_text)


def _host(raw: Any) -> str:
    value = _to_text(raw)
    if not value or any(c.isspace() for c in value) or "/" in value:
        raise InvalidValue("not a host")
    return value


host = Parser("a host name or IP address", _host)

BIND_ALL_HOSTS = frozenset({"", "0.0.0.0", "::", "*", "[::]"})


def is_loopback_host(value: str, *, resolve: bool = True) -> bool:
    """True when every address ``value`` names is a loopback address (bind-all is not).

    A host name is resolved (``localhost``); one that does not resolve counts as not loopback,
    so a mistake can only make a check stricter. ``resolve=False`` never asks DNS (only
    ``localhost`` and loopback literals count).
    """
    import ipaddress
    import socket

    value = value.strip()
    if value in BIND_ALL_HOSTS:
        return False
    try:
        return ipaddress.ip_address(value.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        pass
    if not resolve:
        return value.lower() in ("localhost", "localhost.")
    try:
        infos = socket.getaddrinfo(value, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    addrs = {str(info[4][0]).split("%")[0] for info in infos}
    return bool(addrs) and all(ipaddress.ip_address(a).is_loopback for a in addrs)


def expand_path(raw: str) -> Path:
    return Path(os.path.expanduser(os.path.expandvars(raw)))


def _path(raw: Any) -> Path:
    if isinstance(raw, Path):
        return expand_path(str(raw))
    value = _to_text(raw)
    if not value:
        raise InvalidValue("empty path")
    return expand_path(value)


path = Parser("a file system path (~ and $VARS expanded)", _path)


def _csv(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, (list, tuple)):
        items = [str(x).strip() for x in raw]
    else:
        items = [part.strip() for part in _to_text(raw).split(",")]
    return tuple(item for item in items if item)


csv_list = Parser("a comma-separated list", _csv)
