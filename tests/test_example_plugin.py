"""The third-party example plugin (examples/weightslab-example-plugin), installed next to `.[all]`.

It is discovered through its entry point only: its setting shows up in `config show --json`
with its owner, its lifecycle hook fires when an experiment starts, its step hook on every
step of a real training loop, its subcommand joins `weightslab`, its preview hook renders text
and passes anything else to the next plugin, `weightslab plugins` lists it, and
WEIGHTSLAB_DISABLED_PLUGINS removes it. These tests skip only when the plugin
is not installed and CI is unset; in CI (the nox `integration` session) they must run.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np
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


# -- weightslab_step_end, weightslab_cli_commands, weightslab_preview ------------------------

TRAINING_SCRIPT = """
import numpy as np
import weightslab as wl

x = np.arange(40, dtype=np.float32).reshape(20, 2)
y = (np.arange(20) % 2).astype(np.int64)
loader = wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=4, shuffle=False)
for inputs, ids, targets in loader:  # five batches: one guarded training step each
    with wl.guard_training_context:
        pass
wl.reset_experiment()  # shutdown: the plugin writes its step summary
"""


def test_step_end_fires_on_every_step_of_a_real_training_loop(cwd: Path, tmp_path: Path) -> None:
    greetings = tmp_path / "greetings.txt"
    env = base_env(EXAMPLE_GREETING="steps", EXAMPLE_GREETING_FILE=str(greetings), GRPC_TLS_ENABLED="0",
                   WEIGHTSLAB_ROOT_LOG_DIR=str(tmp_path / "root"), WEIGHTSLAB_LOG_LEVEL="WARNING")
    done = subprocess.run([sys.executable, "-c", TRAINING_SCRIPT], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = greetings.read_text().splitlines()
    assert lines[0].startswith("steps (experiment") and lines[-1] == "5 steps, last step 5"


def test_step_end_is_skipped_when_the_plugin_is_disabled(cwd: Path, tmp_path: Path) -> None:
    greetings = tmp_path / "greetings.txt"
    env = base_env(EXAMPLE_GREETING_FILE=str(greetings), WEIGHTSLAB_DISABLED_PLUGINS="example",
                   WEIGHTSLAB_ROOT_LOG_DIR=str(tmp_path / "root"), WEIGHTSLAB_LOG_LEVEL="WARNING")
    done = subprocess.run([sys.executable, "-c", TRAINING_SCRIPT], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not greetings.exists()


def test_cli_command_is_added_to_the_weightslab_command(cwd: Path) -> None:
    run = weightslab("example-greet", "--name", "Ada", env=base_env(EXAMPLE_GREETING="bonjour"), cwd=cwd)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "bonjour, Ada"
    assert "example-greet" in weightslab("--help", env=base_env(), cwd=cwd).stdout
    gone = weightslab("example-greet", env=base_env(WEIGHTSLAB_DISABLED_PLUGINS="example"), cwd=cwd)
    assert gone.returncode != 0 and "No such command" in gone.stderr


def test_preview_renders_text_and_passes_other_samples_to_the_next_plugin() -> None:
    pytest.importorskip("weightslab_data_cache")
    pm = create_plugin_manager(environ={})
    config = load_config(environ={"GRPC_TLS_ENABLED": "0"}, pm=pm, validate=False)
    text = pm.hook.weightslab_preview(sample="a short caption", size=0, config=config)
    assert text == (b"a short caption", "text/plain; charset=utf-8")
    cut = pm.hook.weightslab_preview(sample="x" * 100, size=10, config=config)
    assert cut[0].decode() == "x" * 9 + "…"
    # Not text: the example returns None and the data cache renders the image.
    image = np.full((8, 8), 200, dtype=np.uint8)
    data, mime = pm.hook.weightslab_preview(sample=image, size=16, config=config)
    assert mime.startswith("image/") and data[:2] in (b"\xff\xd8", b"\x89P")  # JPEG or PNG bytes
    # Nothing renders an arbitrary object: every plugin passed.
    assert pm.hook.weightslab_preview(sample=object(), size=16, config=config) is None


def test_the_example_implements_the_typed_contract() -> None:
    from weightslab.contracts import CliCommand
    from weightslab_example_plugin import plugin

    pm = create_plugin_manager(environ={})
    pm.check_pending()  # every hookimpl of every installed plugin has a spec
    assert pm.get_plugin("example") is plugin
    (command,) = plugin.weightslab_cli_commands()
    assert isinstance(command, CliCommand) and command.name == "example-greet"
