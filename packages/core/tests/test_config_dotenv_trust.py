"""Which ``.env`` files are trusted (issue 12, item 6).

The trigger: a ``.env`` in a shared parent directory (``/tmp``) was found from a working
directory below it and added an attacker's token, replaced the CA and switched the audit log
off. Real files and directories in the test's tmp dir; nothing outside it is written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from weightslab.config import ConfigError


def core_pm() -> pluggy.PluginManager:
    from weightslab import _builtin, hookspecs

    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    pm.register(_builtin, name="core")
    return pm


def load(environ: dict[str, str], cwd: Path) -> Any:
    from weightslab.settings import load_config

    return load_config(environ=environ, cwd=cwd, pm=core_pm())


def write_env(folder: Path, text: str = 'AUDIT_LOG_FORMAT="csv"\n', mode: int = 0o600) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".env"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private tree with HOME pointing elsewhere, so the home rule does not interfere."""
    monkeypatch.setenv("HOME", str(tmp_path / "home-elsewhere"))
    folder = tmp_path / "tree"
    folder.mkdir(mode=0o755)
    return folder


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                messages.append(record.getMessage())

    logger = logging.getLogger("weightslab")
    handler, old_level = Keep(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield messages
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_a_dotenv_in_a_shared_parent_is_never_found(root: Path) -> None:
    shared = root / "shared"  # stands in for /tmp: world-writable with the sticky bit
    shared.mkdir()
    shared.chmod(0o1777)
    write_env(shared, 'AUDIT_LOG_FORMAT="none"\n')
    work = shared / "alice" / "project"
    work.mkdir(parents=True)
    work.parent.chmod(0o700)
    config = load({}, work)
    assert config.env_file is None and config.value("AUDIT_LOG_FORMAT") == "json"


@pytest.mark.parametrize("marker", [".git", "pyproject.toml"])
def test_search_stops_at_the_first_project_marker(root: Path, marker: str) -> None:
    write_env(root)  # above the project: not ours to read
    project = root / "project"
    project.mkdir()
    (project / marker).mkdir() if marker == ".git" else (project / marker).write_text("")
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)
    assert load({}, deep).env_file is None
    own = write_env(project)  # the project's own .env is still found from below
    assert load({}, deep).env_file == own


def test_search_stops_at_the_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home" / "alice"
    work = home / "runs" / "today"
    work.mkdir(parents=True)
    write_env(tmp_path / "home")  # above home
    monkeypatch.setenv("HOME", str(home))
    assert load({}, work).env_file is None
    mine = write_env(home)
    assert load({}, work).env_file == mine


def test_group_or_other_writable_dotenv_is_ignored_with_a_warning(root: Path, warnings: list[str]) -> None:
    path = write_env(root, 'AUDIT_LOG_FORMAT="none"\n', mode=0o664)
    config = load({}, root)
    assert config.env_file is None and config.value("AUDIT_LOG_FORMAT") == "json"
    assert any(str(path) in m and "writable by group or others" in m for m in warnings)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="changing a file's owner needs root")
def test_dotenv_of_another_user_is_ignored_with_a_warning(root: Path, warnings: list[str]) -> None:
    path = write_env(root, 'AUDIT_LOG_FORMAT="none"\n')
    os.chown(path, 65534, -1)
    assert load({}, root).env_file is None
    assert any(str(path) in m and "owned by another user" in m for m in warnings)


def test_an_explicit_untrusted_env_file_is_an_error(root: Path) -> None:
    path = write_env(root / "elsewhere", mode=0o666)
    with pytest.raises(ConfigError, match=r"WEIGHTSLAB_ENV_FILE=.*writable by group or others"):
        load({"WEIGHTSLAB_ENV_FILE": str(path)}, root)


def test_security_weakening_values_from_a_dotenv_are_warned_with_the_path(root: Path, warnings: list[str]) -> None:
    path = write_env(root, 'AUDIT_LOG_FORMAT="none"\nWEIGHTSLAB_DISABLED_PLUGINS="auth"\nWL_TEST_TIMEOUT="12"\n')
    config = load({}, root)
    assert config.env_file == path and config.value("AUDIT_LOG_FORMAT") == "none"
    weakening = [m for m in warnings if "weakens security" in m]
    assert any("AUDIT_LOG_FORMAT='none'" in m and str(path) in m for m in weakening)
    assert any("WEIGHTSLAB_DISABLED_PLUGINS" in m for m in weakening)
    assert not any("WL_TEST_TIMEOUT" in m for m in weakening)  # harmless settings stay quiet
    warnings.clear()
    load({"AUDIT_LOG_FORMAT": "none"}, root)  # the same value exported by the user: no warning
    assert not any("AUDIT_LOG_FORMAT" in m for m in warnings)
