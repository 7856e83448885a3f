"""Logging contract: WATCHDOG level, WEIGHTSLAB_LOG_LEVEL on the ``weightslab`` hierarchy only,
WEIGHTSLAB_LOG_TO_FILE's rotating file under <root log dir>/logs, WEIGHTSLAB_ROOT_LOG_DIR default."""

from __future__ import annotations

import io
import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from weightslab.log import WATCHDOG, configure_logging, default_root_log_dir, level_number


def core_pm() -> pluggy.PluginManager:
    from weightslab import _builtin, hookspecs

    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    pm.register(_builtin, name="core")
    return pm


@pytest.fixture(autouse=True)
def in_tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No .env of the checkout (or anything above it) takes part."""
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the ``weightslab`` and root loggers back as they were (and close our file handlers)."""
    ours, root = logging.getLogger("weightslab"), logging.getLogger()
    saved = (list(ours.handlers), ours.level, ours.propagate, list(root.handlers), root.level)
    yield
    for handler in ours.handlers:
        if handler not in saved[0]:
            handler.close()
    ours.handlers[:], ours.level, ours.propagate = saved[0], saved[1], saved[2]
    root.handlers[:], root.level = saved[3], saved[4]


def experiment(tmp_path: Path, environ: dict[str, str], **kwargs: Any):
    from weightslab.experiment import Experiment

    return Experiment(kwargs=kwargs, environ=environ, pm=core_pm())


def test_watchdog_level_is_registered_between_warning_and_error() -> None:
    assert WATCHDOG == 35 and logging.WARNING < WATCHDOG < logging.ERROR
    assert logging.getLevelName(35) == "WATCHDOG"
    assert logging.getLevelName("WATCHDOG") == 35
    assert level_number("watchdog") == 35 and level_number("DEBUG") == logging.DEBUG


def test_watchdog_records_are_named_and_filtered_by_level() -> None:
    stream = io.StringIO()
    configure_logging("WARNING", stream=stream)
    logging.getLogger("weightslab.watchdog").log(WATCHDOG, "lock held for 61s")
    assert "WATCHDOG weightslab.watchdog: lock held for 61s" in stream.getvalue()
    configure_logging("ERROR", stream=stream)
    logging.getLogger("weightslab.watchdog").log(WATCHDOG, "hidden")
    assert "hidden" not in stream.getvalue()


def test_log_level_applies_to_the_weightslab_hierarchy_only() -> None:
    root = logging.getLogger()
    user_handler = logging.StreamHandler(io.StringIO())
    root.addHandler(user_handler)
    root.setLevel(logging.WARNING)
    third_party = logging.getLogger("some_user_library")
    third_party.setLevel(logging.INFO)
    root_handlers = list(root.handlers)

    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    assert logging.getLogger("weightslab").level == logging.DEBUG
    assert logging.getLogger("weightslab.grpc.deep.child").getEffectiveLevel() == logging.DEBUG
    assert root.handlers == root_handlers and root.level == logging.WARNING
    assert third_party.level == logging.INFO
    logging.getLogger("weightslab.child").debug("debug line")
    assert "debug line" in stream.getvalue()
    # a record is printed once: not a second time by the user's root handler
    assert "debug line" not in user_handler.stream.getvalue()  # type: ignore[attr-defined]


def test_configure_logging_is_idempotent_and_keeps_other_handlers() -> None:
    logger = logging.getLogger("weightslab")
    user_handler = logging.NullHandler()
    logger.addHandler(user_handler)
    for level in ("INFO", "WARNING", "INFO"):
        configure_logging(level, stream=io.StringIO())
    assert user_handler in logger.handlers
    ours = [h for h in logger.handlers if h is not user_handler and h not in logging.getLogger().handlers]
    assert len([h for h in ours if isinstance(h, logging.StreamHandler)
                and getattr(h, "_weightslab_handler", False)]) == 1


def test_experiment_applies_weightslab_log_level(tmp_path: Path) -> None:
    exp = experiment(tmp_path, {"WEIGHTSLAB_LOG_LEVEL": "watchdog"}, root_log_dir=tmp_path / "root")
    exp.start()
    try:
        assert logging.getLogger("weightslab").level == WATCHDOG
    finally:
        exp.shutdown()


def test_log_to_file_adds_a_size_rotating_file_under_root_log_dir(tmp_path: Path) -> None:
    root = tmp_path / "root"
    exp = experiment(tmp_path, {"WEIGHTSLAB_LOG_TO_FILE": "1"}, root_log_dir=root)
    exp.start()
    try:
        handlers = [h for h in logging.getLogger("weightslab").handlers
                    if isinstance(h, logging.handlers.RotatingFileHandler)]
        assert len(handlers) == 1 and handlers[0].maxBytes > 0 and handlers[0].backupCount > 0
        assert Path(handlers[0].baseFilename) == root / "logs" / "weightslab.log"
        logging.getLogger("weightslab.test").warning("to the file")
        handlers[0].flush()
        text = (root / "logs" / "weightslab.log").read_text()
        assert "to the file" in text and "started" in text  # the experiment's own start line too
    finally:
        exp.shutdown()


def test_no_log_file_by_default(tmp_path: Path) -> None:
    exp = experiment(tmp_path, {}, root_log_dir=tmp_path / "root")
    exp.start()
    try:
        assert not (tmp_path / "root" / "logs").exists()
        assert not [h for h in logging.getLogger("weightslab").handlers if isinstance(h, logging.FileHandler)]
    finally:
        exp.shutdown()


def test_log_file_rotates_by_size(tmp_path: Path) -> None:
    configure_logging("INFO", log_to_file=True, log_dir=tmp_path, max_bytes=300, backup_count=2,
                      stream=io.StringIO())
    for i in range(40):
        logging.getLogger("weightslab.rotate").info("line %03d with some padding text", i)
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["weightslab.log", "weightslab.log.1", "weightslab.log.2"]
    assert all((tmp_path / "logs" / name).stat().st_size <= 300 for name in files)


def test_log_to_file_without_a_root_dir_is_an_error() -> None:
    with pytest.raises(ValueError, match="WEIGHTSLAB_LOG_TO_FILE"):
        configure_logging("INFO", log_to_file=True, log_dir=None, stream=io.StringIO())


def test_default_root_log_dir_is_next_to_the_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "project" / "train.py"
    script.parent.mkdir()
    script.write_text("print('train')\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert default_root_log_dir(str(script)) == script.parent.resolve() / "root_log_dir"
    # relative script path: still the script's folder, not the cwd
    monkeypatch.chdir(tmp_path)
    assert default_root_log_dir("project/train.py") == script.parent.resolve() / "root_log_dir"


@pytest.mark.parametrize("argv0", ["", "-c", "-m", "/no/such/script.py"])
def test_default_root_log_dir_is_cwd_for_interactive_sessions(
        argv0: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_root_log_dir(argv0) == tmp_path / "root_log_dir"


def test_default_root_log_dir_reads_sys_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "train.py"
    script.write_text("")
    monkeypatch.setattr("sys.argv", [str(script)])
    assert default_root_log_dir() == tmp_path.resolve() / "root_log_dir"
    monkeypatch.setattr("sys.argv", [""])  # python REPL
    monkeypatch.chdir(tmp_path)
    assert default_root_log_dir() == tmp_path / "root_log_dir"


def test_experiment_root_log_dir_env_kwarg_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "train.py"
    script.write_text("")
    monkeypatch.setattr("sys.argv", [str(script)])
    assert experiment(tmp_path, {}).root_log_dir == tmp_path.resolve() / "root_log_dir"
    assert experiment(tmp_path, {"WEIGHTSLAB_ROOT_LOG_DIR": str(tmp_path / "env")}).root_log_dir == tmp_path / "env"
    assert experiment(tmp_path, {"WEIGHTSLAB_ROOT_LOG_DIR": str(tmp_path / "env")},
                      root_log_dir=tmp_path / "kw").root_log_dir == tmp_path / "kw"


# -- the effect of the settings through Experiment.start() and the SDK singleton -------------------


class _Keep(logging.Handler):
    """Every record the ``weightslab`` logger lets through (its level decides, not ours)."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize(("level", "expected"), [
    ("DEBUG", ["DEBUG", "INFO", "WARNING", "WATCHDOG", "ERROR"]),
    ("info", ["INFO", "WARNING", "WATCHDOG", "ERROR"]),
    ("WATCHDOG", ["WATCHDOG", "ERROR"]),
    ("ERROR", ["ERROR"]),
])
def test_experiment_start_filters_records_by_weightslab_log_level(tmp_path: Path, level: str,
                                                                  expected: list[str]) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)  # the console handler keeps this stream on start()
    root = logging.getLogger()
    root_before = (root.level, list(root.handlers))
    exp = experiment(tmp_path, {"WEIGHTSLAB_LOG_LEVEL": level}, root_log_dir=tmp_path / "root")
    exp.start()
    keep = _Keep()
    logging.getLogger("weightslab").addHandler(keep)
    try:
        child = logging.getLogger("weightslab.grpc.handlers")
        for number in (logging.DEBUG, logging.INFO, logging.WARNING, WATCHDOG, logging.ERROR):
            child.log(number, "probe %s", logging.getLevelName(number))
        assert [r.levelname for r in keep.records] == expected
        printed = [line.split(" ")[2] for line in stream.getvalue().splitlines() if " probe " in line]
        assert printed == expected  # what reaches the console is filtered the same way
        assert (root.level, list(root.handlers)) == root_before  # the user's root logger is left alone
    finally:
        logging.getLogger("weightslab").removeHandler(keep)
        exp.shutdown()


@pytest.fixture
def sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The SDK with no process-wide experiment yet and no root-log-dir/logging variables set."""
    import weightslab as wl
    from weightslab.sdk import reset_experiment

    for name in ("WEIGHTSLAB_ROOT_LOG_DIR", "WEIGHTSLAB_LOG_TO_FILE", "WEIGHTSLAB_LOG_LEVEL", "WL_ENABLE_HP_SYNC"):
        monkeypatch.delenv(name, raising=False)
    reset_experiment()
    yield wl
    reset_experiment()


def test_sdk_singleton_writes_under_weightslab_root_log_dir(sdk: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    env_root = tmp_path / "env-root"
    monkeypatch.setenv("WEIGHTSLAB_ROOT_LOG_DIR", str(env_root))
    monkeypatch.setenv("WEIGHTSLAB_LOG_TO_FILE", "1")
    params = sdk.watch_or_edit({"lr": 0.1}, flag="hp")  # creates and starts the singleton
    exp = sdk.get_experiment()
    assert exp.root_log_dir == env_root and exp.status()["root_log_dir"] == str(env_root)
    assert yaml.safe_load((env_root / "hyperparameters.yaml").read_text()) == {"lr": 0.1}
    logging.getLogger("weightslab.test").warning("a line for the file")
    for handler in logging.getLogger("weightslab").handlers:
        handler.flush()
    assert "a line for the file" in (env_root / "logs" / "weightslab.log").read_text()
    assert params["lr"] == 0.1
    assert not (tmp_path / "cwd" / "root_log_dir").exists()  # not the default next to the script/cwd


def test_sdk_root_log_dir_kwarg_beats_the_environment(sdk: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    env_root, kw_root = tmp_path / "env-root", tmp_path / "kw-root"
    monkeypatch.setenv("WEIGHTSLAB_ROOT_LOG_DIR", str(env_root))
    sdk.watch_or_edit({"lr": 0.2}, flag="hp", root_log_dir=kw_root)
    assert sdk.get_experiment().root_log_dir == kw_root
    assert (kw_root / "hyperparameters.yaml").exists()
    assert not env_root.exists()


def test_sdk_default_root_log_dir_without_the_variable(sdk: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "project" / "train.py"
    script.parent.mkdir()
    script.write_text("")
    monkeypatch.setattr("sys.argv", [str(script)])
    sdk.watch_or_edit({"lr": 0.3}, flag="hp")
    root = sdk.get_experiment().root_log_dir
    assert root == script.parent.resolve() / "root_log_dir"  # next to the training script
    assert (root / "hyperparameters.yaml").exists()
