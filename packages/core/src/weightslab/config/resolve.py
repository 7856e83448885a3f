"""Resolve every section's settings from kwargs, registered config, env, ``.env`` and defaults."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from weightslab.config.dotenv import ENV_FILE_VARIABLE, find_env_file, read_env_file
from weightslab.config.errors import ConfigError
from weightslab.config.fields import InvalidValue, Setting
from weightslab.config.section import SettingsSection

Source = Literal["default", ".env", "env", "config", "kwarg"]
log = logging.getLogger("weightslab.config")


def fingerprint(secret: str) -> str:
    """Short identifier of a secret, safe to log: the one keyed hash of :mod:`weightslab.secrets`
    (HMAC-SHA256 under the per-user key of :mod:`weightslab.config.keys`, 16 hex digits)."""
    from weightslab.secrets import fingerprint as keyed

    return keyed(secret)


@dataclass(frozen=True)
class Entry:
    variable: str
    value: Any
    source: Source
    owner: str
    section: str
    field: str
    setting: Setting

    def __repr__(self) -> str:  # never the secret, even in a debug log or a traceback
        return (f"Entry(variable={self.variable!r}, value={self.display_value()!r}, source={self.source!r}, "
                f"owner={self.owner!r})")

    def display_value(self) -> Any:
        """JSON-friendly value; secrets become a fingerprint."""
        if self.setting.secret:
            if not self.value:
                return None
            joined = ",".join(self.value) if isinstance(self.value, tuple) else str(self.value)
            return f"set (fingerprint {fingerprint(joined)})"
        if isinstance(self.value, Path):
            return str(self.value)
        if isinstance(self.value, tuple):
            return list(self.value)
        return self.value


class Config:
    """The effective configuration: one model per section plus where each value came from."""

    def __init__(self, sections: dict[str, SettingsSection], entries: dict[str, Entry],
                 env_file: Path | None) -> None:
        self._sections = sections
        self.entries = entries
        self.env_file = env_file

    def __getitem__(self, section: str) -> Any:
        try:
            return self._sections[section]
        except KeyError:
            raise KeyError(f"no settings section {section!r}; known: {sorted(self._sections)}") from None

    def __contains__(self, section: object) -> bool:
        return section in self._sections

    def get(self, section: str, default: Any = None) -> Any:
        return self._sections.get(section, default)

    def value(self, variable: str) -> Any:
        return self.entries[variable].value

    def source(self, variable: str) -> Source:
        return self.entries[variable].source

    def as_json(self) -> dict[str, dict[str, Any]]:
        return {
            name: {"value": entry.display_value(), "source": entry.source, "owner": entry.owner}
            for name, entry in sorted(self.entries.items())
        }


def _parse(setting: Setting, raw: Any) -> Any:
    try:
        value = setting.parser(raw)
    except InvalidValue:
        raise ConfigError(f"{setting.env}={raw!r}: expected {setting.parser.accepted}") from None
    if setting.parser.clamp is not None:
        low, high = setting.parser.clamp
        clamped = min(max(value, low), high)
        if clamped != value:
            log.warning("%s=%r is outside %s..%s; clamped to %s", setting.env, raw, low, high, clamped)
            value = clamped
    return value


def resolve(
    sections: Iterable[type[SettingsSection]],
    *,
    kwargs: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None | Literal["auto"] = "auto",
    cwd: Path | None = None,
) -> Config:
    """Build the effective :class:`Config`.

    Precedence per variable: ``kwargs`` (by the setting's kwarg name) → ``config`` (only for
    settings with a ``config_key``) → ``environ`` → ``.env`` → the section default.
    ``os.environ`` is read, never written.
    """
    environ = os.environ if environ is None else environ
    kwargs = kwargs or {}
    config = config or {}
    path = find_env_file(environ, cwd) if env_file == "auto" else env_file
    dotenv = read_env_file(path)
    if ENV_FILE_VARIABLE in dotenv:
        # The .env file is chosen before it is read: naming another one inside it would be a
        # value that does nothing, so it is dropped (and said so) instead of being displayed.
        log.warning("%s=%r in %s is ignored: set it in the environment to choose the .env file",
                    ENV_FILE_VARIABLE, dotenv.pop(ENV_FILE_VARIABLE), path)

    errors: list[str] = []
    models: dict[str, SettingsSection] = {}
    entries: dict[str, Entry] = {}
    seen: set[type[SettingsSection]] = set()
    for section_cls in sections:
        if section_cls in seen:
            continue
        seen.add(section_cls)
        values: dict[str, Any] = {}
        section_entries: list[Entry] = []
        for field, setting in section_cls.settings().items():
            raw: Any
            source: Source
            if setting.kwarg and kwargs.get(setting.kwarg) is not None:
                raw, source = kwargs[setting.kwarg], "kwarg"
            elif setting.config_key and config.get(setting.config_key) is not None:
                raw, source = config[setting.config_key], "config"
            elif setting.env in environ:
                raw, source = environ[setting.env], "env"
            elif setting.env in dotenv:
                raw, source = dotenv[setting.env], ".env"
            else:
                raw, source = None, "default"
            if source == "default":
                value = section_cls.default_of(field)
                if setting.env == ENV_FILE_VARIABLE and path is not None:
                    value = path  # show the .env file actually read (found from cwd upwards)
            else:
                try:
                    value = _parse(setting, raw)
                except ConfigError as exc:
                    errors.append(str(exc))
                    continue
            values[field] = value
            section_entries.append(Entry(setting.env, value, source, section_cls.owner,
                                         section_cls.section, field, setting))
        if errors:
            continue
        models[section_cls.section] = section_cls(**values)
        for entry in section_entries:
            # A variable read by two packages (e.g. GRPC_BACKEND_PORT) is listed under its first owner.
            entries.setdefault(entry.variable, entry)
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors) if len(errors) > 1 else errors[0])
    _warn_weakening(entries.values(), path)
    return Config(models, entries, path)


def _warn_weakening(entries: Iterable[Entry], path: Path | None) -> None:
    """A .env file that weakens security (TLS off, audit off, another CA or token) is said so."""
    for entry in entries:
        weakens = entry.setting.weakens
        if entry.source != ".env" or weakens is None:
            continue
        try:
            weaker = bool(weakens(entry.value))
        except Exception:  # a broken predicate must not hide the configuration
            weaker = True
        if weaker:
            shown = entry.display_value()
            log.warning("%s=%s comes from %s and weakens security; if you did not put it there, remove it "
                        "(shell exports win over .env values)", entry.variable,
                        shown if entry.setting.secret else repr(shown), path)
