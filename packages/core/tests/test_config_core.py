"""The configuration contract for the core's own settings, in-process (no plugin needed).

Every core variable: set by env and by ``.env`` it changes the effective value (with the
right source); a bad value fails naming the variable, the value and what is accepted.
Plus the rules every setting obeys: booleans, clamping, precedence, ``.env`` discovery,
``WEIGHTSLAB_ENV_FILE``, secrets, path expansion, and no ``os.environ`` mutation.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pluggy
import pytest
from weightslab.config import ConfigError, Setting, SettingsSection, fingerprint, resolve
from weightslab.config import fields as f
from weightslab.config.core_settings import CORE_SECTIONS

OWNER = "weightslab-core"

# variable -> (raw value, displayed JSON value, an invalid raw value or None if any text is valid)
CORE_SAMPLES: dict[str, tuple[str, Any, str | None]] = {
    "WEIGHTSLAB_LOG_LEVEL": (" watchdog ", "WATCHDOG", "LOUD"),
    "WEIGHTSLAB_LOG_TO_FILE": ("On", True, "file"),
    "WEIGHTSLAB_ROOT_LOG_DIR": ("/srv/wl/runs", "/srv/wl/runs", ""),
    "AUDIT_LOG_FORMAT": (" CSV ", "csv", "xml"),
    "WEIGHTSLAB_DISABLED_PLUGINS": ("no-such-plugin, other", ["no-such-plugin", "other"], None),
    "WEIGHTSLAB_TRACE_PLUGINS": ("yes", True, "verbose"),
    "WEIGHTSLAB_EVAL_TIMEOUT_MULTIPLIER": ("2.5", 2.5, "0"),
    "WEIGHTSLAB_EVAL_TIMEOUT_MIN_SECONDS": ("7", 7.0, "-1"),
    "WEIGHTSLAB_EVAL_TIMEOUT_SECONDS": ("12.5", 12.5, "soon"),
    "WL_ENABLE_HP_SYNC": ("off", False, "sometimes"),
    "WL_INSTANCE_AGGREGATION": ("MAX", "max", "median"),
    "WL_MAX_TAGS": ("64", 64, "-1"),
    "WL_CHECKPOINT_KEEP_LAST": ("0", 0, "many"),
    "WL_LOCK_TIMEOUT_SECONDS": ("12.5", 12.5, "0"),
    "WL_DISTRIBUTED_SYNC_EVERY": ("25", 25, "0"),
    "WL_TEST_TIMEOUT": ("45", 45.0, "inf"),
}
SPECIAL = {"WEIGHTSLAB_ENV_FILE"}  # names the .env file itself: tested on its own below


def core_pm() -> pluggy.PluginManager:
    """A plugin manager with the core's built-in plugin only (no entry points)."""
    from weightslab import _builtin, hookspecs

    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    pm.register(_builtin, name="core")
    return pm


def load(environ: dict[str, str], cwd: Path, **kw: Any):
    from weightslab.settings import load_config

    return load_config(environ=environ, cwd=cwd, pm=core_pm(), **kw)


def write_env(folder: Path, values: dict[str, str], name: str = ".env") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(f'{key}="{value}"\n' for key, value in values.items()), encoding="utf-8")
    return path


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    """A cwd with no .env in it or above it (asserted, so a stray /tmp/.env is reported)."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    assert load({}, folder).env_file is None, "a .env above the test's tmp dir interferes"
    return folder


@pytest.fixture
def wl_records() -> Iterator[list[logging.LogRecord]]:
    """Records of the ``weightslab`` hierarchy, whatever its propagate/level state."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("weightslab")
    handler, old_level = Keep(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def core_variables() -> set[str]:
    return {s.env for section in CORE_SECTIONS for s in section.settings().values()}


def test_every_core_variable_has_a_sample() -> None:
    assert core_variables() == set(CORE_SAMPLES) | SPECIAL


@pytest.mark.parametrize("variable", sorted(CORE_SAMPLES))
def test_env_and_dotenv_change_the_effective_value(variable: str, empty_dir: Path) -> None:
    raw, shown, _ = CORE_SAMPLES[variable]
    default = load({}, empty_dir).as_json()[variable]
    assert default["source"] == "default" and default["owner"] == OWNER
    assert default["value"] != shown, "the sample must differ from the default"

    by_env = load({variable: raw}, empty_dir).as_json()[variable]
    assert by_env == {"value": shown, "source": "env", "owner": OWNER}

    write_env(empty_dir, {variable: raw})
    config = load({}, empty_dir)
    assert config.env_file == empty_dir / ".env"
    assert config.as_json()[variable] == {"value": shown, "source": ".env", "owner": OWNER}


@pytest.mark.parametrize("variable", sorted(v for v, s in CORE_SAMPLES.items() if s[2] is not None))
def test_invalid_value_names_variable_value_and_accepted(variable: str, empty_dir: Path) -> None:
    bad = CORE_SAMPLES[variable][2]
    setting = next(s for section in CORE_SECTIONS for s in section.settings().values() if s.env == variable)
    for environ in ({variable: bad}, {}):
        if not environ:
            write_env(empty_dir, {variable: bad})
        with pytest.raises(ConfigError) as err:
            load(environ, empty_dir)
        message = str(err.value)
        assert f"{variable}={bad!r}" in message
        assert setting.parser.accepted in message


def test_errors_of_several_variables_are_reported_together(empty_dir: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load({"WL_ENABLE_HP_SYNC": "maybe", "AUDIT_LOG_FORMAT": "xml"}, empty_dir)
    assert "WL_ENABLE_HP_SYNC='maybe'" in str(err.value) and "AUDIT_LOG_FORMAT='xml'" in str(err.value)


def test_json_types(empty_dir: Path) -> None:
    data = load({"WL_TEST_TIMEOUT": "12"}, empty_dir).as_json()
    assert data["WL_ENABLE_HP_SYNC"]["value"] is True
    assert data["WL_TEST_TIMEOUT"]["value"] == 12.0
    assert data["WEIGHTSLAB_ROOT_LOG_DIR"]["value"] is None  # unset -> null
    assert data["WEIGHTSLAB_DISABLED_PLUGINS"]["value"] == []
    json.dumps(data)  # serialisable as is


# -- booleans ------------------------------------------------------------------------------

BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
              "off": False}


def _spellings(word: str) -> list[str]:
    return [word, word.upper(), word.capitalize(), f"  {word} ", f"\t{word.upper()}\n"]


@pytest.mark.parametrize("variable", sorted(
    s.env for section in CORE_SECTIONS for s in section.settings().values() if s.parser is f.boolean))
def test_booleans_accept_the_documented_words(variable: str, empty_dir: Path) -> None:
    for word, expected in BOOL_WORDS.items():
        for spelling in _spellings(word):
            assert load({variable: spelling}, empty_dir).value(variable) is expected, repr(spelling)
    for bad in ("", "2", "y", "n", "enabled", "truthy", "-1"):
        with pytest.raises(ConfigError, match=variable):
            load({variable: bad}, empty_dir)


def test_boolean_parser_directly() -> None:
    for word, expected in BOOL_WORDS.items():
        for spelling in _spellings(word):
            assert f.boolean(spelling) is expected
    assert f.boolean(True) is True and f.boolean(0) is False
    with pytest.raises(f.InvalidValue):
        f.boolean(2)


# -- clamping, secrets, kwarg/config precedence (mechanism, on a section defined here) ------

class DemoSection(SettingsSection):
    section = "demo_test"
    owner = "demo-owner"

    wait_ms: Annotated[int, Setting("DEMO_WAIT_MS", f.clamped_int(0, 1000), "clamped")] = 100
    token: Annotated[str | None, Setting("DEMO_TOKEN", f.text, "a secret", secret=True)] = None
    tokens: Annotated[tuple[str, ...], Setting("DEMO_TOKENS", f.csv_list, "secrets", secret=True)] = ()
    mode: Annotated[str, Setting("DEMO_MODE", f.choice("a", "b", "c"), "both",
                                 config_key="demo_mode", kwarg="demo_mode")] = "a"


def test_clamped_values_are_clamped_with_a_warning_naming_the_variable(
        empty_dir: Path, wl_records: list[logging.LogRecord]) -> None:
    for raw, expected in (("5000", 1000), ("-7", 0), ("1000", 1000), ("0", 0), ("250", 250)):
        wl_records.clear()
        assert resolve([DemoSection], environ={"DEMO_WAIT_MS": raw}, cwd=empty_dir).value("DEMO_WAIT_MS") == expected
        warnings = [r for r in wl_records if r.levelno == logging.WARNING]
        if str(expected) == raw:
            assert not warnings
        else:
            assert len(warnings) == 1 and "DEMO_WAIT_MS" in warnings[0].getMessage()
            assert raw in warnings[0].getMessage() and str(expected) in warnings[0].getMessage()
    with pytest.raises(ConfigError, match=r"DEMO_WAIT_MS='slow': expected an integer \(clamped to 0..1000\)"):
        resolve([DemoSection], environ={"DEMO_WAIT_MS": "slow"}, cwd=empty_dir)


def test_secrets_show_a_fingerprint_never_the_secret(empty_dir: Path) -> None:
    secret, rotation = "tok-0123456789abcdef", "old-aaaaaaaaaaaa,new-bbbbbbbbbbbb"
    config = resolve([DemoSection], environ={"DEMO_TOKEN": secret, "DEMO_TOKENS": rotation}, cwd=empty_dir)
    data = config.as_json()
    assert data["DEMO_TOKEN"]["value"] == f"set (fingerprint {fingerprint(secret)})"
    assert data["DEMO_TOKENS"]["value"] == f"set (fingerprint {fingerprint(rotation)})"
    dumped = json.dumps(data)
    for raw in (secret, "old-aaaaaaaaaaaa", "new-bbbbbbbbbbbb"):
        assert raw not in dumped
    assert config["demo_test"].token == secret  # the value itself stays usable in-process
    shown_anywhere = repr(config["demo_test"]) + str(config["demo_test"]) + repr(list(config.entries.values()))
    assert secret not in shown_anywhere and "old-aaaaaaaaaaaa" not in shown_anywhere
    unset = resolve([DemoSection], environ={}, cwd=empty_dir).as_json()
    assert unset["DEMO_TOKEN"]["value"] is None and unset["DEMO_TOKENS"]["value"] is None


def test_precedence_kwarg_config_env_dotenv_default(empty_dir: Path) -> None:
    write_env(empty_dir, {"DEMO_MODE": "b"})

    def mode(**kw: Any) -> tuple[str, str]:
        config = resolve([DemoSection], cwd=empty_dir, **kw)
        return config.value("DEMO_MODE"), config.source("DEMO_MODE")

    assert mode(environ={}) == ("b", ".env")
    assert mode(environ={"DEMO_MODE": "c"}) == ("c", "env")
    assert mode(environ={"DEMO_MODE": "c"}, config={"demo_mode": "a"}) == ("a", "config")
    assert mode(environ={"DEMO_MODE": "c"}, config={"demo_mode": "a"}, kwargs={"demo_mode": "b"}) == ("b", "kwarg")
    # None means "not given" for kwargs and config alike
    assert mode(environ={"DEMO_MODE": "c"}, config={"demo_mode": None}, kwargs={"demo_mode": None}) == ("c", "env")
    # only the declared config key counts: the variable name is not a config key
    assert mode(environ={}, config={"DEMO_MODE": "a", "mode": "a"}) == ("b", ".env")
    # a bad config value is reported under the variable's name too
    with pytest.raises(ConfigError, match="DEMO_MODE='z'"):
        resolve([DemoSection], environ={}, config={"demo_mode": "z"}, cwd=empty_dir)


def test_instance_aggregation_config_key_beats_env(empty_dir: Path) -> None:
    config = load({"WL_INSTANCE_AGGREGATION": "max"}, empty_dir, config={"instance_aggregation": "mean"})
    assert config.value("WL_INSTANCE_AGGREGATION") == "mean" and config.source("WL_INSTANCE_AGGREGATION") == "config"
    assert config["experiment"].instance_aggregation == "mean"
    config = load({"WL_INSTANCE_AGGREGATION": "max"}, empty_dir, config={"other": 1})
    assert config.value("WL_INSTANCE_AGGREGATION") == "max" and config.source("WL_INSTANCE_AGGREGATION") == "env"


def test_root_log_dir_kwarg_beats_env(empty_dir: Path, tmp_path: Path) -> None:
    config = load({"WEIGHTSLAB_ROOT_LOG_DIR": str(tmp_path / "env")}, empty_dir,
                  kwargs={"root_log_dir": tmp_path / "kw"})
    assert config.value("WEIGHTSLAB_ROOT_LOG_DIR") == tmp_path / "kw"
    assert config.source("WEIGHTSLAB_ROOT_LOG_DIR") == "kwarg"


def test_only_documented_settings_have_config_keys() -> None:
    keys = {s.config_key for section in CORE_SECTIONS for s in section.settings().values() if s.config_key}
    assert keys == {"instance_aggregation"}


# -- .env discovery ------------------------------------------------------------------------

def test_env_beats_dotenv(empty_dir: Path) -> None:
    write_env(empty_dir, {"WL_TEST_TIMEOUT": "10", "AUDIT_LOG_FORMAT": "csv"})
    config = load({"WL_TEST_TIMEOUT": "20"}, empty_dir)
    assert (config.value("WL_TEST_TIMEOUT"), config.source("WL_TEST_TIMEOUT")) == (20.0, "env")
    assert (config.value("AUDIT_LOG_FORMAT"), config.source("AUDIT_LOG_FORMAT")) == ("csv", ".env")


def test_dotenv_found_in_parents_and_the_first_one_wins(empty_dir: Path) -> None:
    outer = write_env(empty_dir / "a", {"WL_TEST_TIMEOUT": "11", "AUDIT_LOG_FORMAT": "csv"})
    inner = write_env(empty_dir / "a" / "b", {"WL_TEST_TIMEOUT": "22"})
    deep = empty_dir / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    config = load({}, deep)
    assert config.env_file == inner
    assert config.value("WL_TEST_TIMEOUT") == 22.0
    # lookup stops at the first .env: the outer one is not merged in
    assert config.source("AUDIT_LOG_FORMAT") == "default"
    assert load({}, empty_dir / "a").env_file == outer
    # the file used is shown as the effective WEIGHTSLAB_ENV_FILE
    assert config.as_json()["WEIGHTSLAB_ENV_FILE"] == {"value": str(inner), "source": "default", "owner": OWNER}


def test_weightslab_env_file_names_the_file_explicitly(empty_dir: Path, tmp_path: Path) -> None:
    write_env(empty_dir, {"WL_TEST_TIMEOUT": "11"})
    custom = write_env(tmp_path / "elsewhere", {"WL_TEST_TIMEOUT": "33"}, name="custom.env")
    config = load({"WEIGHTSLAB_ENV_FILE": str(custom)}, empty_dir)
    assert config.env_file == custom
    assert (config.value("WL_TEST_TIMEOUT"), config.source("WL_TEST_TIMEOUT")) == (33.0, ".env")
    assert config.as_json()["WEIGHTSLAB_ENV_FILE"] == {"value": str(custom), "source": "env", "owner": OWNER}
    # relative to the working directory
    relative = load({"WEIGHTSLAB_ENV_FILE": "../elsewhere/custom.env"}, tmp_path / "cwd")
    assert relative.env_file is not None and relative.env_file.resolve() == custom.resolve()
    with pytest.raises(ConfigError, match="WEIGHTSLAB_ENV_FILE='/no/such.env'"):
        load({"WEIGHTSLAB_ENV_FILE": "/no/such.env"}, empty_dir)


def test_weightslab_env_file_inside_a_dotenv_is_ignored_with_a_warning(
        empty_dir: Path, tmp_path: Path, wl_records: list[logging.LogRecord]) -> None:
    custom = write_env(tmp_path / "elsewhere", {"WL_TEST_TIMEOUT": "33"}, name="custom.env")
    found = write_env(empty_dir, {"WEIGHTSLAB_ENV_FILE": str(custom), "WL_TEST_TIMEOUT": "11"})
    config = load({}, empty_dir)
    assert config.env_file == found and config.value("WL_TEST_TIMEOUT") == 11.0
    assert config.as_json()["WEIGHTSLAB_ENV_FILE"]["value"] == str(found)
    assert any("WEIGHTSLAB_ENV_FILE" in r.getMessage() and "ignored" in r.getMessage() for r in wl_records)


def test_loading_dotenv_never_mutates_os_environ(empty_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WL_TEST_TIMEOUT", "20")
    monkeypatch.delenv("AUDIT_LOG_FORMAT", raising=False)
    monkeypatch.chdir(empty_dir)
    write_env(empty_dir, {"WL_TEST_TIMEOUT": "10", "AUDIT_LOG_FORMAT": "csv", "WL_UNRELATED_FROM_DOTENV": "x"})
    before = dict(os.environ)
    from weightslab.settings import load_config

    config = load_config(pm=core_pm())  # reads os.environ and the cwd's .env
    assert dict(os.environ) == before
    assert (config.value("WL_TEST_TIMEOUT"), config.source("WL_TEST_TIMEOUT")) == (20.0, "env")
    assert (config.value("AUDIT_LOG_FORMAT"), config.source("AUDIT_LOG_FORMAT")) == ("csv", ".env")
    assert "WL_UNRELATED_FROM_DOTENV" not in os.environ


def test_dotenv_syntax(empty_dir: Path) -> None:
    (empty_dir / ".env").write_text(
        "# comment\n\nexport WL_TEST_TIMEOUT=12\nAUDIT_LOG_FORMAT='csv'  # trailing comment\n"
        "WEIGHTSLAB_LOG_LEVEL=\" debug \"\n", encoding="utf-8")
    config = load({}, empty_dir)
    assert config.value("WL_TEST_TIMEOUT") == 12.0
    assert config.value("AUDIT_LOG_FORMAT") == "csv"
    assert config.value("WEIGHTSLAB_LOG_LEVEL") == "DEBUG"


# -- parsers -------------------------------------------------------------------------------

def test_paths_expand_home_and_environment_references(empty_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WL_TEST_BASE", "/data/base")
    assert load({"WEIGHTSLAB_ROOT_LOG_DIR": "~/wl-runs"}, empty_dir).value("WEIGHTSLAB_ROOT_LOG_DIR") == \
        Path.home() / "wl-runs"
    assert load({"WEIGHTSLAB_ROOT_LOG_DIR": "$WL_TEST_BASE/runs"}, empty_dir).value("WEIGHTSLAB_ROOT_LOG_DIR") == \
        Path("/data/base/runs")
    assert load({}, empty_dir, kwargs={"root_log_dir": "~/kw"}).value("WEIGHTSLAB_ROOT_LOG_DIR") == Path.home() / "kw"


@pytest.mark.parametrize("raw", ["inf", "-inf", "nan", "1e999", "abc", "", "1,5"])
def test_numbers_must_be_finite(raw: str, empty_dir: Path) -> None:
    with pytest.raises(ConfigError, match="WEIGHTSLAB_EVAL_TIMEOUT_SECONDS"):
        load({"WEIGHTSLAB_EVAL_TIMEOUT_SECONDS": raw}, empty_dir)


def test_numbers_accept_surrounding_whitespace(empty_dir: Path) -> None:
    assert load({"WEIGHTSLAB_EVAL_TIMEOUT_SECONDS": "  3.5\n"}, empty_dir).value("WEIGHTSLAB_EVAL_TIMEOUT_SECONDS") == 3.5
    assert f.port(" 8080 ") == 8080
    for bad in ("0", "65536", "80.5", "http"):
        with pytest.raises(f.InvalidValue):
            f.port(bad)
