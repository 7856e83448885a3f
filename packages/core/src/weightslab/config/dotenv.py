"""Finding and reading a ``.env`` file without touching ``os.environ``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from weightslab.config.fields import expand_path

ENV_FILE_VARIABLE = "WEIGHTSLAB_ENV_FILE"


def find_env_file(environ: Mapping[str, str], cwd: Path | None = None) -> Path | None:
    """``WEIGHTSLAB_ENV_FILE`` if set, else the first ``.env`` in cwd or its parents."""
    explicit = environ.get(ENV_FILE_VARIABLE, "").strip()
    if explicit:
        path = expand_path(explicit)
        if not path.is_absolute():
            path = (cwd or Path.cwd()) / path
        if not path.is_file():
            from weightslab.config.errors import ConfigError

            raise ConfigError(f"{ENV_FILE_VARIABLE}={explicit!r}: expected an existing .env file")
        return path
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / ".env"
        if candidate.is_file():
            return candidate
    return None


def read_env_file(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    values = dotenv_values(path, interpolate=False)
    return {key: value for key, value in values.items() if value is not None}
