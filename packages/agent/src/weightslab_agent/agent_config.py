"""``agent_config.yaml``: where it is looked up, its keys and their defaults.

Lookup order (first existing file wins; ``weightslab config show`` names it):

1. ``<AGENT_CONFIG_PATH>/agent_config.yaml``;
2. repository level: the root of the git repository containing the training script;
3. package level: the defaults shipped in this package;
4. the current working directory.

Every key under ``agent:`` is optional (missing keys take the defaults below); an unknown key
or a bad value fails with one error naming the file, the key, the value and what is accepted.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from weightslab.config import ConfigError
from weightslab.config.fields import FALSE_WORDS, TRUE_WORDS

log = logging.getLogger("weightslab.agent")

FILE_NAME = "agent_config.yaml"
PACKAGE_FILE = Path(__file__).with_name(FILE_NAME)
Origin = Literal["AGENT_CONFIG_PATH", "repository", "package", "cwd", "none"]


class AgentConfig(BaseModel):
    """The keys under ``agent:`` with the defaults of the configuration reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["ollama", "openrouter"] = "ollama"
    ollama_model: str = Field(default="llama3.2:3b", min_length=1, max_length=256)
    ollama_host: str = Field(default="localhost", min_length=1, max_length=256)
    ollama_port: int = Field(default=11435, ge=1, le=65535)
    openrouter_model: str = Field(default="meta-llama/llama-3.3-70b-instruct", min_length=1, max_length=256)
    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    openrouter_request_timeout: float = Field(default=15.0, gt=0, le=3600)
    openrouter_api_key: SecretStr | None = None
    fallback_to_local: bool = False

    @field_validator("openrouter_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected an http(s) URL such as https://openrouter.ai/api/v1")
        return value.rstrip("/")

    @field_validator("fallback_to_local", mode="before")
    @classmethod
    def _bool(cls, value: Any) -> Any:
        if isinstance(value, str):
            word = value.strip().lower()
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
            raise ValueError("expected one of 1/true/yes/on or 0/false/no/off")
        return value

    @field_validator("openrouter_api_key", mode="before")
    @classmethod
    def _empty_key(cls, value: Any) -> Any:
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    @property
    def ollama_url(self) -> str:
        """Base URL of the Ollama server (``ollama_host`` may carry its own scheme)."""
        host = self.ollama_host.strip()
        if host.startswith(("http://", "https://")):
            return host.rstrip("/") if urlsplit(host).port else f"{host.rstrip('/')}:{self.ollama_port}"
        if ":" in host and not host.startswith("["):  # bare IPv6 address
            host = f"[{host}]"
        return f"http://{host}:{self.ollama_port}"


@dataclass(frozen=True)
class ConfigFile:
    """The file that won the lookup (``path`` None: none found, built-in defaults)."""

    path: Path | None
    origin: Origin
    searched: tuple[Path, ...] = ()

    def describe(self) -> str:
        if self.path is None:
            return "agent_config.yaml: none found (built-in defaults)"
        return f"agent_config.yaml: {self.path} ({self.origin})"


def training_script_dir(argv0: str | None = None) -> Path | None:
    """Folder of the training script (``sys.argv[0]`` when it is a Python file), else None."""
    script = argv0 if argv0 is not None else (sys.argv[0] if sys.argv else "")
    if script and script not in ("-c", "-m") and script.endswith(".py") and Path(script).is_file():
        return Path(script).resolve().parent
    return None


def git_root(start: Path | None) -> Path | None:
    """The closest folder at or above ``start`` that holds ``.git`` (a folder or a worktree file)."""
    if start is None:
        return None
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def find_config_file(config_dir: Path | None = None, *, script_dir: Path | None = None,
                     cwd: Path | None = None, package_file: Path = PACKAGE_FILE) -> ConfigFile:
    """Apply the lookup order. A set ``AGENT_CONFIG_PATH`` without the file is logged and skipped."""
    candidates: list[tuple[Path, Origin]] = []
    if config_dir is not None:
        candidates.append((Path(config_dir) / FILE_NAME, "AGENT_CONFIG_PATH"))
    root = git_root(script_dir)
    if root is not None:
        candidates.append((root / FILE_NAME, "repository"))
    candidates.append((package_file, "package"))
    candidates.append(((cwd or Path.cwd()) / FILE_NAME, "cwd"))
    for path, origin in candidates:
        if path.is_file():
            return ConfigFile(path, origin, tuple(p for p, _ in candidates))
        if origin == "AGENT_CONFIG_PATH":
            log.warning("AGENT_CONFIG_PATH=%s holds no %s; looking further", config_dir, FILE_NAME)
    return ConfigFile(None, "none", tuple(p for p, _ in candidates))


def parse_config(text: str, source: str) -> AgentConfig:
    """The ``agent:`` mapping of a YAML document; errors name ``source`` and the key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})") from None
    if data is None:
        return AgentConfig()
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with an 'agent:' section")
    unknown_top = sorted(str(k) for k in data if k != "agent")
    if unknown_top:
        raise ConfigError(f"{source}: unknown top-level key(s) {', '.join(unknown_top)}; expected 'agent:'")
    section = data.get("agent") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: 'agent:' must be a mapping of keys, got {type(section).__name__}")
    try:
        return AgentConfig.model_validate(section)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, section)) from None


def _describe(exc: ValidationError, source: str, section: dict[str, Any]) -> str:
    known = ", ".join(AgentConfig.model_fields)
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err.get("loc", ()))
        if err.get("type") == "extra_forbidden":
            problems.append(f"agent.{key}: unknown key; known keys: {known}")
            continue
        raw = section.get(key)
        shown = "<secret>" if key == "openrouter_api_key" else repr(raw)
        problems.append(f"agent.{key}={shown}: {err.get('msg', 'invalid')}")
    return f"{source}: " + "; ".join(problems)


def load_agent_config(config_dir: Path | None = None, *, script_dir: Path | None = None,
                      cwd: Path | None = None) -> tuple[AgentConfig, ConfigFile]:
    """The effective YAML configuration and the file it came from."""
    found = find_config_file(config_dir, script_dir=script_dir, cwd=cwd)
    if found.path is None:
        return AgentConfig(), found
    try:
        text = found.path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{found.path}: cannot read {FILE_NAME} ({exc.strerror or exc})") from None
    return parse_config(text, str(found.path)), found
