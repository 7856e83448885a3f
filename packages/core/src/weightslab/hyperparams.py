"""Live hyperparameters: requested vs applied, key-path edits, a live-editable YAML file."""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("weightslab.hyperparameters")


class HyperParameterError(ValueError):
    pass


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
    """Validate ``new`` against the type of the current value ``old``."""
    if isinstance(new, str) and not isinstance(old, str):
        try:
            new = yaml.safe_load(new)
        except yaml.YAMLError:
            raise HyperParameterError(f"{key}={new!r}: not a valid value") from None
    if old is None or new is None:
        return new
    if isinstance(old, bool):
        if not isinstance(new, bool):
            raise HyperParameterError(f"{key}={new!r}: expected a boolean (current {old!r})")
        return new
    if isinstance(old, int):
        if isinstance(new, bool) or not isinstance(new, (int, float)) or (
                isinstance(new, float) and not new.is_integer()):
            raise HyperParameterError(f"{key}={new!r}: expected an integer (current {old!r})")
        return int(new)
    if isinstance(old, float):
        if isinstance(new, bool) or not isinstance(new, (int, float)):
            raise HyperParameterError(f"{key}={new!r}: expected a number (current {old!r})")
        if new != new:
            raise HyperParameterError(f"{key}={new!r}: NaN is not accepted")
        return float(new)
    if isinstance(old, str):
        if not isinstance(new, str):
            raise HyperParameterError(f"{key}={new!r}: expected text (current {old!r})")
        return new
    if isinstance(old, list):
        if not isinstance(new, list):
            raise HyperParameterError(f"{key}={new!r}: expected a list (current {old!r})")
        return new
    return new


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
        self._mtime: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
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
        with self._lock:
            self._pending.update(coerced)
        self.new_pending.set()
        return coerced

    def add_applier(self, fn: Callable[[str, Any], None]) -> None:
        self._appliers.append(fn)

    def add_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(fn)

    def apply_pending(self) -> dict[str, Any]:
        """Apply queued edits (called at a step boundary). Returns what changed."""
        with self._lock:
            if not self._pending:
                return {}
            changes, self._pending = self._pending, {}
            # Cleared with the pending edits taken: a request racing this call sets it again.
            self.new_pending.clear()
            for key, value in changes.items():
                _set_path(self._applied, key, value)
        self._write_yaml()
        for key, value in changes.items():
            for applier in self._appliers:
                applier(key, value)
        for listener in self._listeners:
            listener(changes)
        log.info("applied hyperparameters: %s", changes)
        return changes

    # -- YAML file ----------------------------------------------------------
    def _write_yaml(self) -> None:
        if self.yaml_path is None:
            return
        if self.yaml_path.exists() and self._mtime is not None and \
                self.yaml_path.stat().st_mtime_ns != self._mtime:
            return  # edited since we last read it: never overwrite a person's edit; the poller reads it
        self.yaml_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.yaml_path.with_suffix(self.yaml_path.suffix + ".tmp")
        tmp.write_text(yaml.safe_dump(self.as_dict(), sort_keys=False))
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
            data = yaml.safe_load(path.read_text()) or {}
            if not isinstance(data, Mapping):
                raise HyperParameterError(f"{path}: expected a mapping at the top level")
            current = self.flat()
            changed = {k: v for k, v in flatten(data).items() if k in current and current[k] != v}
            unknown = sorted(set(flatten(data)) - set(current))
            if unknown:
                log.warning("%s: ignoring unknown hyperparameters %s", path, unknown)
            queued = self.request_many(changed) if changed else {}
            self.last_error = None
            return queued
        except (yaml.YAMLError, HyperParameterError) as exc:
            self.last_error = f"{path}: {exc}"
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
