"""Live hyperparameters: requested vs applied, key-path edits, a live-editable YAML file."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from weightslab.secrets import is_secret_name, masked, redact, scrub

log = logging.getLogger("weightslab.hyperparameters")

MAX_VALUE_CHARS = 65536  # a value given as text (hp set, gRPC, the agent)
MAX_VALUE_DEPTH = 16  # nesting of lists/mappings
MAX_VALUE_ITEMS = 10000  # list items + mapping entries in one value
MAX_FILE_BYTES = 1 << 20  # hyperparameters.yaml
_INT = re.compile(r"[+-]?\d+(_\d+)*")
_BASED_INT = re.compile(r"[+-]?0([xX][0-9a-fA-F_]+|[oO][0-7_]+|[bB][01_]+)")
_FLOAT = re.compile(r"[+-]?(\d+(_\d+)*\.?\d*(_\d+)*|\.\d+(_\d+)*)([eE][+-]?\d+)?")
_SPECIAL_FLOATS = {"inf": float("inf"), "+inf": float("inf"), "-inf": float("-inf"), ".inf": float("inf"),
                   "+.inf": float("inf"), "-.inf": float("-inf"), "nan": float("nan"), ".nan": float("nan")}


class HyperParameterError(ValueError):
    pass


class NumberLoader(yaml.SafeLoader):
    """YAML 1.1 safe loading, plus the floats YAML 1.1 reads as text: ``1e-3``, ``1E3``, ``5.``, ``1_000.5``.

    Quoted scalars stay text (``"1e-3"``), as in any YAML loader.
    """


NumberLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][-+]?\d+)?$"),
    list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that reads numbers in every common notation as numbers (see :class:`NumberLoader`)."""
    loader = NumberLoader(text)  # a SafeLoader subclass: safe_load's machinery, one extra float resolver
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def shown(key: str, value: Any) -> str:
    """``repr`` of ``value`` for a message: a fingerprint when ``key`` names a secret."""
    return str(masked(value)) if is_secret_name(key) else repr(value)


def parse_value(key: str, text: str) -> Any:
    """A value typed as text: a number in any common notation, JSON, or YAML without anchors/aliases.

    ``1e-3``, ``1E3``, ``.5``, ``1_000``, ``0x10`` are numbers; ``[1, 2]``, ``{"a": 1}``, ``null``,
    ``true`` are JSON; ``[a, b]``, ``~``, ``yes`` are plain YAML. Anchors and aliases (``&a``/``*a``:
    a few hundred bytes can expand to gigabytes) are refused, as are values over
    ``MAX_VALUE_CHARS`` characters or nested deeper than ``MAX_VALUE_DEPTH``.
    """
    if len(text) > MAX_VALUE_CHARS:
        raise HyperParameterError(f"{key}: value of {len(text)} characters; at most {MAX_VALUE_CHARS} accepted")
    stripped = text.strip()
    number = _number(stripped)
    if number is not None:
        return number
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError):
        value = _safe_yaml(key, stripped)
    check_shape(key, value)
    return value


def _number(text: str) -> int | float | None:
    if _INT.fullmatch(text):
        return int(text)
    if _BASED_INT.fullmatch(text):
        return int(text, 0)
    if _FLOAT.fullmatch(text) and any(c.isdigit() for c in text):
        return float(text)
    return _SPECIAL_FLOATS.get(text.lower())


def _safe_yaml(key: str, text: str) -> Any:
    depth = 0
    try:
        # Look at the events first: refuse anchors/aliases and deep nesting before building anything.
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise HyperParameterError(f"{key}: YAML anchors and aliases (&name, *name) are not accepted; "
                                          "write the value out in full (JSON or plain YAML)")
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_VALUE_DEPTH:
                    raise HyperParameterError(f"{key}: value nested deeper than {MAX_VALUE_DEPTH} levels")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
        return load_yaml(text)
    except yaml.YAMLError as exc:
        raise HyperParameterError(f"{key}: not a valid value ({_yaml_problem(exc)}); expected a number, "
                                  "JSON or plain YAML") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What and where, without the snippet of the input a YAML error quotes (it may hold a secret)."""
    problem = getattr(exc, "problem", None) or type(exc).__name__
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(problem)


def check_shape(key: str, value: Any) -> None:
    """Bound a structured value: depth, item count, text length."""
    items = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (list, tuple, dict)):
            if depth >= MAX_VALUE_DEPTH:
                raise HyperParameterError(f"{key}: value nested deeper than {MAX_VALUE_DEPTH} levels")
            children = list(node.items()) if isinstance(node, dict) else list(node)
            items += len(children)
            if items > MAX_VALUE_ITEMS:
                raise HyperParameterError(f"{key}: value with more than {MAX_VALUE_ITEMS} items")
            for child in children:
                if isinstance(node, dict):
                    stack.extend(((child[0], depth + 1), (child[1], depth + 1)))
                else:
                    stack.append((child, depth + 1))
        elif isinstance(node, str) and len(node) > MAX_VALUE_CHARS:
            raise HyperParameterError(f"{key}: text of {len(node)} characters; at most {MAX_VALUE_CHARS} accepted")


def _walk(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from _walk(value, path)
        else:
            yield path, value


def _set_path(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set the flattened ``key`` (a dotted path; a dict key may itself contain dots)."""
    if key in tree or "." not in key:
        tree[key] = value
        return
    parts = key.split(".")
    for i in range(1, len(parts)):
        head, rest = ".".join(parts[:i]), ".".join(parts[i:])
        if isinstance(tree.get(head), dict):
            _set_path(tree[head], rest, value)
            return
    tree[key] = value


def flatten(tree: Mapping[str, Any]) -> dict[str, Any]:
    return dict(_walk(tree))


def _coerce(key: str, old: Any, new: Any) -> Any:
    """Validate ``new`` against the type of the current value ``old``.

    Messages never quote the value of a secret-named key (current or requested): fingerprints.
    """
    if isinstance(new, str) and not isinstance(old, str):
        new = parse_value(key, new)
    else:
        check_shape(key, new)
    if old is None or new is None:
        return new
    req, cur = shown(key, new), shown(key, old)
    if isinstance(old, bool):
        if not isinstance(new, bool):
            raise HyperParameterError(f"{key}={req}: expected a boolean (current {cur})")
        return new
    if isinstance(old, int):
        if isinstance(new, bool) or not isinstance(new, (int, float)) or (
                isinstance(new, float) and not new.is_integer()):
            raise HyperParameterError(f"{key}={req}: expected an integer (current {cur})")
        return int(new)
    if isinstance(old, float):
        if isinstance(new, bool) or not isinstance(new, (int, float)):
            raise HyperParameterError(f"{key}={req}: expected a number (current {cur})")
        if new != new:
            raise HyperParameterError(f"{key}={req}: NaN is not accepted")
        try:
            return float(new)
        except OverflowError:  # an int beyond float range (10**400): refused like any bad value
            raise HyperParameterError(f"{key}={req}: expected a number within float range "
                                      f"(current {cur})") from None
    if isinstance(old, str):
        if not isinstance(new, str):
            raise HyperParameterError(f"{key}={req}: expected text (current {cur})")
        return new
    if isinstance(old, list):
        if not isinstance(new, list):
            raise HyperParameterError(f"{key}={req}: expected a list (current {cur})")
        return new
    return new


# Constraints every training loop shares, by the key's last part: an edit outside them would
# kill the run at the next step (a loader with batch_size 0, an optimizer with lr -1).
_RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "batch_size": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "lr": ("a finite number > 0", lambda v: _finite(v) and v > 0),
    "learning_rate": ("a finite number > 0", lambda v: _finite(v) and v > 0),
    "epochs": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "num_epochs": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "max_epochs": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "max_steps": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "num_workers": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "momentum": ("a number in [0, 1]", lambda v: _is_num(v) and 0 <= v <= 1),
    "weight_decay": ("a finite number >= 0", lambda v: _finite(v) and v >= 0),
    "dropout": ("a number in [0, 1)", lambda v: _is_num(v) and 0 <= v < 1),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _finite(value: Any) -> bool:
    try:
        return _is_num(value) and math.isfinite(value)
    except OverflowError:  # an int beyond float range
        return False


def accepted(key: str) -> str | None:
    """What a value of ``key`` must be (the built-in rule of its last part), or ``None``."""
    rule = _RULES.get(key.rsplit(".", 1)[-1].lower())
    return rule[0] if rule is not None else None


def check_range(key: str, value: Any, current: Any = None) -> None:
    """Refuse a value outside the built-in rule of ``key`` (``batch_size`` >= 1, ``lr`` > 0...)."""
    rule = _RULES.get(key.rsplit(".", 1)[-1].lower())
    if rule is None or value is None or rule[1](value):
        return
    if current is not None and (isinstance(current, bool) or not isinstance(current, (int, float))):
        return  # a key of the same name that is no number here ("batch_size": "auto"): the user's own meaning
    raise HyperParameterError(f"{key}={shown(key, value)}: expected {rule[0]} (current {shown(key, current)}); "
                              "the edit was refused and training goes on with the current value")


class HyperParameters:
    """A nested dict of hyperparameters that changes only at step boundaries.

    ``request(key, value)`` validates and queues; ``apply_pending()`` (called by the loop
    at the next step) makes it the applied value and runs the appliers (optimizer lr,
    loader batch size). The YAML file is rewritten with applied values and polled for
    edits every ``poll_interval`` seconds.
    """

    def __init__(self, values: Mapping[str, Any], *, yaml_path: Path | None = None,
                 poll_interval: float = 1.0) -> None:
        if poll_interval <= 0:
            raise HyperParameterError(f"poll_interval={poll_interval!r}: expected a positive number of seconds")
        self._lock = threading.Lock()
        self._applied: dict[str, Any] = copy.deepcopy(dict(values))
        self._pending: dict[str, Any] = {}
        self.yaml_path = yaml_path
        self.poll_interval = poll_interval
        self._appliers: list[Callable[[str, Any], None]] = []
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._validators: list[Callable[[str, Any], None]] = []
        self._mtime: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        # A valid file clears only a file error: the poller reading the file just rewritten with the
        # kept values must not hide the apply-time rejection it follows.
        self._file_error = False
        self._rejected: dict[str, dict[str, Any]] = {}
        self.new_pending = threading.Event()

    # -- reading ------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._applied)

    def flat(self) -> dict[str, Any]:
        return flatten(self.as_dict())

    def pending(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._pending)

    def get(self, key: str, default: Any = None) -> Any:
        return self.flat().get(key, default)

    def __getitem__(self, key: str) -> Any:
        flat = self.flat()
        if key in flat:
            return flat[key]
        tree = self.as_dict()
        if key in tree:
            return tree[key]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in self.flat() or key in self.as_dict())

    # -- editing ------------------------------------------------------------
    def request(self, key: str, value: Any) -> Any:
        """Validate and queue ``key = value`` (key path with dots). Returns the coerced value."""
        if not isinstance(key, str) or not key:
            raise HyperParameterError(f"key={key!r}: expected a dotted key path")
        flat = self.flat()
        if key not in flat:
            known = ", ".join(sorted(flat)) or "none"
            raise HyperParameterError(f"unknown hyperparameter {key!r}; known: {known}")
        coerced = _coerce(key, flat[key], value)
        check_range(key, coerced, flat[key])
        for validate in self._validators:
            validate(key, coerced)
        with self._lock:
            self._pending[key] = coerced
        self.new_pending.set()
        return coerced

    def request_many(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """All-or-nothing: validate every key first."""
        flat = self.flat()
        coerced = {}
        for key, value in values.items():
            if key not in flat:
                raise HyperParameterError(f"unknown hyperparameter {key!r}; known: {', '.join(sorted(flat))}")
            coerced[key] = _coerce(key, flat[key], value)
            check_range(key, coerced[key], flat[key])
            for validate in self._validators:
                validate(key, coerced[key])
        with self._lock:
            self._pending.update(coerced)
        self.new_pending.set()
        return coerced

    def add_applier(self, fn: Callable[[str, Any], None]) -> None:
        """``fn(key, value)`` runs at the step boundary for each applied edit; raising refuses the
        edit: it is rolled back, logged and listed by :meth:`rejected` (training goes on)."""
        self._appliers.append(fn)

    def add_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(fn)

    def add_validator(self, fn: Callable[[str, Any], None]) -> None:
        """``fn(key, value)`` raises :class:`HyperParameterError` to refuse an edit before it is queued."""
        self._validators.append(fn)

    def apply_pending(self) -> dict[str, Any]:
        """Apply queued edits (called at a step boundary). Returns what changed.

        Never raises for an edit: one whose applier fails (the loader or optimizer refused it)
        is rolled back to its previous value, logged and listed by :meth:`rejected`, and the
        loop goes on with the previous value.
        """
        with self._lock:
            if not self._pending:
                return {}
            changes, self._pending = self._pending, {}
            # Cleared with the pending edits taken: a request racing this call sets it again.
            self.new_pending.clear()
            previous = flatten(self._applied)
            for key, value in changes.items():
                _set_path(self._applied, key, value)
        self._write_yaml_quietly()  # before the appliers, as a person reading the file expects
        applied: dict[str, Any] = {}
        for key, value in changes.items():
            problem = self._run_appliers(key, value)
            if problem is None:
                applied[key] = value
                with self._lock:
                    self._rejected.pop(key, None)
                continue
            old = previous.get(key)
            problem = scrub(problem, {**self.as_dict(), key: value})  # an exception text may quote a secret
            with self._lock:
                _set_path(self._applied, key, old)
                self._rejected[key] = {"value": value, "reason": problem, "kept": old}
            self._run_appliers(key, old)  # best effort: undo a partial apply (e.g. one optimizer of two)
            self.last_error = scrub(f"{key}={shown(key, value)} rejected when applied ({problem}); "
                                    f"kept {shown(key, old)}", self.as_dict())
            self._file_error = False
            log.warning("hyperparameter edit rejected, training goes on: %s", self.last_error)
        if len(applied) < len(changes):
            self._write_yaml_quietly()  # the kept values
        if applied:
            for listener in self._listeners:
                try:
                    listener(applied)
                except Exception as exc:
                    log.warning("hyperparameter listener %s failed on %s: %s",
                                getattr(listener, "__name__", listener), redact(applied), exc)
            log.info("applied hyperparameters: %s", redact(applied))
        return applied

    def _write_yaml_quietly(self) -> None:
        try:
            self._write_yaml()
        except OSError as exc:  # a full disk must not stop the run either
            log.warning("cannot write %s: %s", self.yaml_path, exc)

    def _run_appliers(self, key: str, value: Any) -> str | None:
        """Run every applier for ``key``; the first failure as text (``None`` when all succeeded)."""
        for applier in self._appliers:
            try:
                applier(key, value)
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"
        return None

    def rejected(self) -> dict[str, dict[str, Any]]:
        """Edits refused when applied, by key: ``{"value", "reason", "kept"}`` (until the key next applies)."""
        with self._lock:
            return copy.deepcopy(self._rejected)

    # -- YAML file ----------------------------------------------------------
    def _write_yaml(self) -> None:
        if self.yaml_path is None:
            return
        if self.yaml_path.exists() and self._mtime is not None and \
                self.yaml_path.stat().st_mtime_ns != self._mtime:
            return  # edited since we last read it: never overwrite a person's edit; the poller reads it
        self.yaml_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.yaml_path.with_suffix(self.yaml_path.suffix + ".tmp")
        # 0600: the file may hold secret-named values (API keys) in clear.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)  # an existing .tmp keeps its old mode otherwise
            fh.write(yaml.safe_dump(self.as_dict(), sort_keys=False))
        os.replace(tmp, self.yaml_path)
        self._mtime = self.yaml_path.stat().st_mtime_ns

    def check_file(self) -> dict[str, Any]:
        """Read the YAML if it changed; queue the differing values. Returns what was queued."""
        path = self.yaml_path
        if path is None or not path.exists():
            return {}
        mtime = path.stat().st_mtime_ns
        if mtime == self._mtime:
            return {}
        self._mtime = mtime
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise HyperParameterError(f"{path.name}: {size} bytes; at most {MAX_FILE_BYTES} accepted")
            data = load_yaml(path.read_text()) or {}
            if not isinstance(data, Mapping):
                raise HyperParameterError(f"{path.name}: expected a mapping at the top level")
            current = self.flat()
            changed = {k: v for k, v in flatten(data).items() if k in current and current[k] != v}
            unknown = sorted(set(flatten(data)) - set(current))
            if unknown:
                log.warning("%s: ignoring unknown hyperparameters %s", path, unknown)
            queued = self.request_many(changed) if changed else {}
            if self._file_error:
                self.last_error, self._file_error = None, False
            return queued
        except yaml.YAMLError as exc:
            self.last_error, self._file_error = f"{path.name}: not valid YAML ({_yaml_problem(exc)})", True
            log.warning("hyperparameter file edit rejected, keeping the applied values: %s", self.last_error)
            return {}
        except HyperParameterError as exc:
            self.last_error, self._file_error = scrub(f"{path.name}: {exc}", self.as_dict()), True
            log.warning("hyperparameter file edit rejected, keeping the applied values: %s", self.last_error)
            return {}

    def start_watching(self) -> None:
        if self.yaml_path is None or self._thread is not None:
            return
        if not self.yaml_path.exists():
            self._write_yaml()
        else:
            self._mtime = self.yaml_path.stat().st_mtime_ns

        def loop() -> None:
            while not self._stop.wait(self.poll_interval):
                try:
                    self.check_file()
                except OSError as exc:
                    log.warning("cannot read %s: %s", self.yaml_path, exc)

        self._thread = threading.Thread(target=loop, name="weightslab-hp-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
