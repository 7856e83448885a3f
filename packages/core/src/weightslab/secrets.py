"""The one rule for secret-named values, and how such values are shown.

A name is secret when one of its words (split at ``_ - . /``, spaces and camelCase) is
``token``/``tokens``, ``secret``/``secrets``, ``password``/``passwd``/``pwd``, ``credential(s)``,
``private``, ``authorization``, ``apikey``/``api`` ``key``, ``access`` ``key``, or when its last word
(not the only one) is ``key`` (``openrouter_api_key``, ``hf_access_key``, ``db_passwd``, ``signingKey``). Counting names such as
``max_tokens`` or ``num_tokens`` are not secret, and neither is a name with the word ``fingerprint``.

Secret values are shown as a fingerprint: a keyed hash (HMAC-SHA256 under a random per-user key,
:mod:`weightslab.config.keys`, 16 hex digits), so the same value gives the same fingerprint in
every process of the user (an edit is visible; `config show` matches the server's log) but a log
cannot be used to test guesses of a short password offline.
Every place that shows values (logs, errors, audit, API responses, checkpoints, CLI) uses this module.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

SECRET_WORDS = frozenset({"token", "tokens", "secret", "secrets", "password", "passwords", "passwd", "pwd",
                          "credential", "credentials", "private", "apikey", "apikeys", "accesskey",
                          "authorization"})
_KEY_PAIRS = frozenset({("api", "key"), ("api", "keys"), ("access", "key"), ("access", "keys")})
_SUFFIX_WORDS = frozenset({"key"})
_COUNT_WORDS = frozenset({"max", "min", "num", "n", "number", "total", "count", "nb"})
_COUNTABLE = frozenset({"token", "tokens"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^A-Za-z0-9]+")



def words(name: str) -> list[str]:
    """Lower-case words of ``name`` (``openRouter-API_key`` -> ``open router api key``)."""
    out: list[str] = []
    for part in _SPLIT.split(name):
        out.extend(piece.lower() for piece in _CAMEL.split(part) if piece)
    return out


def is_secret_name(name: object) -> bool:
    """True when values stored under ``name`` (a key, a dotted key path, a variable) are secret."""
    if not isinstance(name, str) or not name:
        return False
    # A dotted path is secret when its last component is (``llm.openrouter_api_key``) or any
    # component names a secret group (``credentials.user``).
    parts = [words(component) for component in name.split(".") if component]
    if not parts:
        return False
    if any("fingerprint" in ws or "fingerprints" in ws for ws in parts):
        return False
    for ws in parts:
        if not ws:
            continue
        counting = ws[0] in _COUNT_WORDS
        for i, word in enumerate(ws):
            if word in SECRET_WORDS and not (counting and word in _COUNTABLE):
                return True
            if i > 0 and (ws[i - 1], word) in _KEY_PAIRS:
                return True
    last = parts[-1]
    # ``key`` alone names a key path or a dict key (the audit's ``params["key"]``), not a secret.
    return len(last) > 1 and last[-1] in _SUFFIX_WORDS


def _key() -> bytes:
    # Per user (``~/.weightslab/fingerprint.key``), so `config show`, the audit log and the
    # server's log agree across processes; per process when that file cannot be used.
    from weightslab.config.keys import fingerprint_key

    return fingerprint_key()


def fingerprint(value: Any) -> str:
    """A short keyed hash of ``value`` (16 hex digits), stable across this user's processes."""
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
    return hmac.new(_key(), data, hashlib.sha256).hexdigest()[:16]


def masked(value: Any) -> Any:
    """What to show instead of a secret ``value``: ``None``/empty stay as they are (nothing to hide)."""
    if value is None or value == "":
        return value
    return f"fingerprint {fingerprint(value)}"


def shown(name: object, value: Any) -> Any:
    """``value`` as it may be shown under ``name``: masked when the name is secret, nested mappings too."""
    if is_secret_name(name):
        return masked(value)
    if isinstance(value, Mapping):
        return redact(value, prefix=str(name))
    return value


def redact(values: Mapping[Any, Any], *, prefix: str = "") -> dict[Any, Any]:
    """A copy of ``values`` (nested mappings too) with every secret-named entry masked."""
    out: dict[Any, Any] = {}
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if is_secret_name(str(key)) or is_secret_name(path):
            out[key] = masked(value)
        elif isinstance(value, Mapping):
            out[key] = redact(value, prefix=path)
        else:
            out[key] = value
    return out


def scrub(text: str, values: Mapping[Any, Any]) -> str:
    """``text`` with every secret value from ``values`` (key -> value, nested too) replaced by its fingerprint.

    For messages that may quote a value (an exception text): a secret never leaves in clear.
    """
    for value in _secret_values(values):
        rendered = str(value)
        if len(rendered) >= 4:  # shorter values would mask ordinary words in the text
            text = text.replace(repr(value), masked(value)).replace(rendered, masked(value))
    return text


def _secret_values(values: Mapping[Any, Any], prefix: str = "") -> list[Any]:
    found: list[Any] = []
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            found.extend(_secret_values(value, path))
        elif is_secret_name(str(key)) or is_secret_name(path):
            items = value if isinstance(value, (list, tuple)) else [value]
            found.extend(v for v in items if v is not None and v != "")
    return found
