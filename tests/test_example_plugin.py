"""The third-party example plugin (examples/weightslab-example-plugin), installed next to `.[all]`.

It is discovered through its entry point only: its setting shows up in `config show --json`
with its owner, its lifecycle hook fires when an experiment starts, `weightslab plugins`
lists it, and WEIGHTSLAB_DISABLED_PLUGINS removes it. These tests skip only when the plugin
is not installed and CI is unset; in CI (the nox `integration` session) they must run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from weightslab.config import ConfigError
from weightslab.plugins import create_plugin_manager, reset_plugin_manager
from weightslab.settings import load_config
from wl_testutil import base_env, require_example_plugin, weightslab, write_env

OWNER = "weightslab-example-plugin"


@pytest.fixture(autouse=True)
def example_installed() -> None:
    require_example_plugin()


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def restore_logging() -> Iterator[None]:
    logger = logging.getLogger("weightslab")
    saved = list(logger.handlers), logger.level, logger.propagate
    yield
    for handler in logger.handlers:
        if handler not in saved[0]:
            handler.close()
    logger.handlers[:], logger.level, logger.propagate = saved


def test_setting_shows_in_config_show_with_its_owner(cwd: Path) -> None:
    data = weightslab("config", "show", "--json", env=base_env(EXAMPLE_GREETING="bonjour"), cwd=cwd).json
    assert data["EXAMPLE_GREETING"] == {"value": "bonjour", "source": "env", "owner": OWNER}
    assert data["EXAMPLE_GREETING_FILE"] == {"value": None, "source": "default", "owner": OWNER}


def test_setting_from_dotenv_and_default(cwd: Path) -> None:
    pm = create_plugin_manager(environ={})
    assert load_config(environ={}, cwd=cwd, pm=pm, validate=False).as_json()["EXAMPLE_GREETING"] == \
        {"value": "hello from the example plugin", "source": "default", "owner": OWNER}
    write_env(cwd, {"EXAMPLE_GREETING": "salut"})
    assert load_config(environ={}, cwd=cwd, pm=pm, validate=False).as_json()["EXAMPLE_GREETING"] == \
        {"value": "salut", "source": ".env", "owner": OWNER}


def test_plugins_command_lists_it(cwd: Path) -> None:
    rows = weightslab("plugins", "--json", env=base_env(), cwd=cwd).json
    assert {"name": "example", "distribution": OWNER, "version": metadata.version(OWNER)} in rows


def test_lifecycle_hook_fires_when_an_experiment_starts(
        cwd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> None:
    from weightslab.experiment import Experiment

    greetings = tmp_path / "out" / "greetings.txt"
    monkeypatch.setenv("EXAMPLE_GREETING", "hello integration")
    monkeypatch.setenv("EXAMPLE_GREETING_FILE", str(greetings))
    reset_plugin_manager()  # the process-wide manager, as a training script gets it
    try:
        experiment = Experiment(kwargs={"root_log_dir": tmp_path / "root"})
        assert not greetings.exists()
        experiment.start()
        try:
            lines = greetings.read_text().splitlines()
            assert len(lines) == 1 and lines[0].startswith("hello integration")
            assert str(tmp_path / "root") in lines[0]
        finally:
            experiment.shutdown()
    finally:
        reset_plugin_manager()


def test_disabled_example_plugin_neither_configures_nor_reacts(
        cwd: Path, tmp_path: Path, restore_logging: None) -> None:
    from weightslab.experiment import Experiment

    greetings = tmp_path / "greetings.txt"
    environ = {"WEIGHTSLAB_DISABLED_PLUGINS": "example", "EXAMPLE_GREETING_FILE": str(greetings)}
    pm = create_plugin_manager(environ=environ)
    assert pm.get_plugin("example") is None
    assert "EXAMPLE_GREETING" not in load_config(environ=environ, cwd=cwd, pm=pm, validate=False).as_json()
    experiment = Experiment(kwargs={"root_log_dir": tmp_path / "root"}, environ=environ, pm=pm)
    experiment.start()
    experiment.shutdown()
    assert not greetings.exists()


def test_its_validation_names_the_variable(cwd: Path) -> None:
    pm = create_plugin_manager(environ={})
    with pytest.raises(ConfigError, match="EXAMPLE_GREETING=''"):
        load_config(environ={"EXAMPLE_GREETING": "   ", "GRPC_TLS_ENABLED": "0"}, cwd=cwd, pm=pm)
