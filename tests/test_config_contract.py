"""The configuration contract (../shared/spec/configuration.md) over the assembled system.

In-process (fast, exhaustive): for every variable of every installed plugin's sections, set by
env and by ``.env`` it changes the effective value ``config show --json`` reports, with the
right source and owner; an invalid value fails naming the variable, the value and what is
accepted; booleans, clamping, config-first keys and kwargs. The set of modelled variables is
the spec's.

Through the real ``weightslab`` console script (subprocess, a handful): one run with every
variable set by env and one with every variable in a ``.env``, each compared value by value
(and against the in-process result), plus ``config check`` failures, clamping warnings,
secrets never printed, ``weightslab plugins`` and ``WEIGHTSLAB_DISABLED_PLUGINS``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy
import pytest
from weightslab.config import ConfigError, resolve
from weightslab.config import fields as f
from weightslab.plugins import create_plugin_manager
from weightslab.settings import all_sections, load_config
from wl_testutil import (
    ARCHITECTURE,
    BEYOND_SPEC,
    CLAMPED,
    DOCUMENTED_OUTSIDE_TABLES,
    ENV_FILE,
    FIRST_PARTY,
    PLUGIN_NAMES,
    REPO,
    SAMPLES,
    SECRETS,
    SPEC,
    base_env,
    shown,
    spec_file,
    spec_table_variables,
    weightslab,
    write_env,
)


@pytest.fixture(scope="module")
def pm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pluggy.PluginManager]:
    """Every installed plugin (created in an empty cwd: no .env, no WEIGHTSLAB_DISABLED_PLUGINS)."""
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("pm-cwd"))
    try:
        yield create_plugin_manager(environ={})
    finally:
        os.chdir(here)


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def show_json(pm: pluggy.PluginManager, environ: dict[str, str], cwd: Path, **kw: Any) -> dict[str, Any]:
    """What `weightslab config show --json` prints, computed in-process."""
    config = load_config(environ=environ, cwd=cwd, pm=pm, validate=False, **kw)
    assert config.env_file == (cwd / ".env" if (cwd / ".env").exists() else None), "stray .env above tmp"
    return config.as_json()


def first_party_variables(pm: pluggy.PluginManager) -> set[str]:
    return {s.env for section in all_sections(pm) if section.owner in FIRST_PARTY
            for s in section.settings().values()}


def settings_of(pm: pluggy.PluginManager, variable: str) -> list[Any]:
    return [s for section in all_sections(pm) for s in section.settings().values() if s.env == variable]


@pytest.fixture
def wl_records() -> Iterator[list[logging.LogRecord]]:
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


# -- the set of variables ------------------------------------------------------------------

def test_the_modelled_variables_are_exactly_the_specs(pm: pluggy.PluginManager) -> None:
    table = spec_table_variables()
    assert len(table) > 50, "parsing the spec tables found too few variables"
    modelled = first_party_variables(pm)
    assert modelled - table - DOCUMENTED_OUTSIDE_TABLES - BEYOND_SPEC == set(), "modelled but not in the spec"
    coverage = (REPO / "docs" / "SETTINGS_COVERAGE.md").read_text()
    for variable in BEYOND_SPEC - table:
        assert variable in modelled and f"`{variable}`" in coverage, variable
    assert table - modelled == set(), "in the spec but modelled by no installed package"
    prose = spec_file(SPEC).read_text() + spec_file(ARCHITECTURE).read_text()
    for variable in DOCUMENTED_OUTSIDE_TABLES:
        assert f"`{variable}" in prose
    assert set(SAMPLES) | {ENV_FILE} == modelled, "every variable needs a sample in tests/wl_testutil.py"


def test_config_show_lists_every_setting_of_every_installed_plugin(pm: pluggy.PluginManager, cwd: Path) -> None:
    every = {s.env for section in all_sections(pm) for s in section.settings().values()}
    assert set(show_json(pm, {}, cwd)) == every
    plugins = {name for name, plugin in pm.list_name_plugin() if plugin is not None}
    assert PLUGIN_NAMES <= plugins


# -- every variable, in-process ------------------------------------------------------------

@pytest.mark.parametrize("variable", sorted(SAMPLES))
def test_env_and_dotenv_change_the_effective_value(variable: str, pm: pluggy.PluginManager, cwd: Path) -> None:
    sample, expected = SAMPLES[variable], shown(variable)
    default = show_json(pm, {}, cwd)[variable]
    assert default["source"] == "default" and default["owner"] == sample.owner
    assert default["value"] != expected, "the sample must differ from the default"

    assert show_json(pm, {variable: sample.raw}, cwd)[variable] == \
        {"value": expected, "source": "env", "owner": sample.owner}

    write_env(cwd, {variable: sample.raw})
    assert show_json(pm, {}, cwd)[variable] == {"value": expected, "source": ".env", "owner": sample.owner}

    # the typed value every package reading the variable gets follows it too
    config = load_config(environ={variable: sample.raw}, cwd=cwd, pm=pm, validate=False)
    readers = [(section.section, field) for section in all_sections(pm)
               for field, s in section.settings().items() if s.env == variable]
    assert readers
    for section_name, field in readers:
        assert getattr(config[section_name], field) == config.value(variable), (section_name, field)


@pytest.mark.parametrize("variable", sorted(v for v, s in SAMPLES.items() if s.invalid is not None))
def test_invalid_value_is_rejected_naming_variable_value_and_accepted(
        variable: str, pm: pluggy.PluginManager, cwd: Path) -> None:
    bad = SAMPLES[variable].invalid
    accepted = {s.parser.accepted for s in settings_of(pm, variable)}
    for via in ("env", ".env"):
        if via == ".env":
            write_env(cwd, {variable: str(bad)})
        with pytest.raises(ConfigError) as err:
            show_json(pm, {variable: str(bad)} if via == "env" else {}, cwd)
        message = str(err.value)
        assert f"{variable}={bad!r}" in message
        assert all(text in message for text in accepted), message


def test_variables_without_invalid_values_are_the_free_text_ones(pm: pluggy.PluginManager) -> None:
    free = {v for v, s in SAMPLES.items() if s.invalid is None}
    assert free == SECRETS | {"WEIGHTSLAB_DISABLED_PLUGINS"}
    for variable in free:
        assert {s.parser for s in settings_of(pm, variable)} <= {f.text, f.csv_list}


def test_the_specs_example_error_message(pm: pluggy.PluginManager, cwd: Path) -> None:
    with pytest.raises(ConfigError) as err:
        show_json(pm, {"GRPC_WATCHDOG_INTERVAL_SECONDS": "abc"}, cwd)
    assert str(err.value) == "GRPC_WATCHDOG_INTERVAL_SECONDS='abc': expected a positive number of seconds"


def test_weightslab_env_file(pm: pluggy.PluginManager, cwd: Path, tmp_path: Path) -> None:
    write_env(cwd, {"CLI_PORT": "6001"})
    custom = write_env(tmp_path / "other", {"CLI_PORT": "6002"}, name="custom.env")
    data = load_config(environ={ENV_FILE: str(custom)}, cwd=cwd, pm=pm, validate=False).as_json()
    assert data[ENV_FILE] == {"value": str(custom), "source": "env", "owner": "weightslab-core"}
    assert data["CLI_PORT"] == {"value": 6002, "source": ".env", "owner": "weightslab-cli"}
    assert show_json(pm, {}, cwd)[ENV_FILE] == {"value": str(cwd / ".env"), "source": "default",
                                                 "owner": "weightslab-core"}


def test_env_beats_dotenv_for_every_variable(pm: pluggy.PluginManager, cwd: Path) -> None:
    write_env(cwd, {variable: sample.raw for variable, sample in SAMPLES.items()})
    defaults = show_json(pm, {}, cwd / "..")  # no .env there
    environ = {}
    for variable in SAMPLES:  # the env gives back each variable's default: env must win over .env
        value = defaults[variable]["value"]
        if value is None or variable in SECRETS:
            continue
        environ[variable] = ",".join(value) if isinstance(value, list) else str(value).lower() \
            if isinstance(value, bool) else str(value)
    data = show_json(pm, environ, cwd)
    for variable in environ:
        assert data[variable]["source"] == "env", variable
        assert data[variable]["value"] == defaults[variable]["value"], variable
    for variable in set(SAMPLES) - set(environ):
        assert data[variable]["source"] == ".env", variable


# -- rules -----------------------------------------------------------------------------------

BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
              "off": False}


def test_every_boolean_accepts_the_documented_words_any_case_with_whitespace(
        pm: pluggy.PluginManager, cwd: Path) -> None:
    booleans = [(section, s.env) for section in all_sections(pm) for s in section.settings().values()
                if s.parser is f.boolean]
    assert {v for v, sample in SAMPLES.items() if isinstance(sample.shown, bool)} <= {v for _, v in booleans}
    for section, variable in booleans:
        for word, expected in BOOL_WORDS.items():
            for spelling in (word, word.upper(), word.capitalize(), f"  {word}\t", f"\n{word.swapcase()} "):
                got = resolve([section], environ={variable: spelling}, cwd=cwd).value(variable)
                assert got is expected, (variable, spelling)
        for bad in ("", "2", "y", "enabled", "nope"):
            with pytest.raises(ConfigError, match=f"{variable}={bad!r}: expected a boolean"):
                resolve([section], environ={variable: bad}, cwd=cwd)


@pytest.mark.parametrize("variable", sorted(CLAMPED))
def test_clamped_values_clamp_with_a_warning_naming_the_variable(
        variable: str, pm: pluggy.PluginManager, cwd: Path, wl_records: list[logging.LogRecord]) -> None:
    low, high = CLAMPED[variable]
    for raw, expected in ((str(high * 10), high), (str(low - 5), low), (str(high), high), (str(low), low)):
        wl_records.clear()
        assert show_json(pm, {variable: raw}, cwd)[variable]["value"] == expected
        warnings = [r.getMessage() for r in wl_records if r.levelno == logging.WARNING]
        if raw == str(expected):
            assert not warnings
        else:
            assert len(warnings) == 1 and variable in warnings[0] and raw in warnings[0], warnings
    with pytest.raises(ConfigError, match=f"{variable}='x'"):
        show_json(pm, {variable: "x"}, cwd)


def test_secrets_show_set_with_fingerprint_or_null(pm: pluggy.PluginManager, cwd: Path) -> None:
    environ = {variable: SAMPLES[variable].raw for variable in SECRETS}
    data = show_json(pm, environ, cwd)
    dumped = json.dumps(data)
    for variable in SECRETS:
        assert data[variable]["value"].startswith("set (fingerprint ")
        for part in SAMPLES[variable].raw.split(","):
            assert part not in dumped
        assert show_json(pm, {}, cwd)[variable]["value"] is None
    assert next(s for s in settings_of(pm, "GRPC_AUTH_TOKEN")).secret
    secrets = {s.env for section in all_sections(pm) for s in section.settings().values() if s.secret}
    assert secrets & set(SAMPLES) == SECRETS


def test_secrets_are_masked_in_reprs_of_sections_and_entries(pm: pluggy.PluginManager, cwd: Path) -> None:
    environ = {variable: SAMPLES[variable].raw for variable in SECRETS}
    config = load_config(environ=environ, cwd=cwd, pm=pm, validate=False)
    texts = [repr(entry) for entry in config.entries.values()]
    texts += [f"{section!r} {section!s}" for section in (config[s.section] for s in all_sections(pm))]
    for variable in SECRETS:
        for part in SAMPLES[variable].raw.split(","):
            assert not [text for text in texts if part in text], variable
    assert config["auth"].auth_token == SAMPLES["GRPC_AUTH_TOKEN"].raw  # still usable in-process


def test_paths_expand_home_and_environment_references(pm: pluggy.PluginManager, cwd: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WL_TEST_BASE", "/data/base")
    paths = [s.env for section in all_sections(pm) for s in section.settings().values() if s.parser is f.path]
    assert {"WEIGHTSLAB_ROOT_LOG_DIR", "GRPC_TLS_CERT_DIR", "AGENT_CONFIG_PATH"} <= set(paths)
    for variable in paths:
        if variable == ENV_FILE:
            continue
        data = show_json(pm, {variable: "~/x"}, cwd)
        assert data[variable]["value"] == str(Path.home() / "x"), variable
        assert show_json(pm, {variable: "$WL_TEST_BASE/y"}, cwd)[variable]["value"] == "/data/base/y"


# -- precedence: kwarg > config key > env > .env > default ------------------------------------

def test_tls_flags_config_key_beats_env(pm: pluggy.PluginManager, cwd: Path) -> None:
    config = load_config(config={"grpc_tls_enabled": False}, environ={"GRPC_TLS_ENABLED": "1"}, cwd=cwd, pm=pm)
    assert config.value("GRPC_TLS_ENABLED") is False and config.source("GRPC_TLS_ENABLED") == "config"
    assert config["auth"].tls_enabled is False
    config = load_config(config={"grpc_tls_require_client_auth": False, "grpc_tls_enabled": False},
                         environ={"GRPC_TLS_REQUIRE_CLIENT_AUTH": "yes"}, cwd=cwd, pm=pm)
    assert (config.value("GRPC_TLS_REQUIRE_CLIENT_AUTH"), config.source("GRPC_TLS_REQUIRE_CLIENT_AUTH")) == \
        (False, "config")
    # without the config key the env applies
    config = load_config(environ={"GRPC_TLS_ENABLED": "0"}, cwd=cwd, pm=pm)
    assert (config.value("GRPC_TLS_ENABLED"), config.source("GRPC_TLS_ENABLED")) == (False, "env")


def test_tls_paths_config_keys_beat_env(pm: pluggy.PluginManager, cwd: Path) -> None:
    write_env(cwd, {"GRPC_TLS_CA_FILE": "/dotenv/ca.crt"})
    environ = {"GRPC_TLS_CERT_DIR": "/env/certs", "GRPC_TLS_KEY_FILE": "/env/k.key",
               "GRPC_TLS_CERT_FILE": "/env/c.crt"}
    config = {"grpc_tls_cert_dir": "/cfg/certs", "grpc_tls_key_file": "/cfg/k.key"}
    data = show_json(pm, environ, cwd, config=config)
    assert data["GRPC_TLS_CERT_DIR"]["value"] == "/cfg/certs" and data["GRPC_TLS_CERT_DIR"]["source"] == "config"
    assert data["GRPC_TLS_KEY_FILE"]["value"] == "/cfg/k.key" and data["GRPC_TLS_KEY_FILE"]["source"] == "config"
    assert data["GRPC_TLS_CERT_FILE"]["value"] == "/env/c.crt" and data["GRPC_TLS_CERT_FILE"]["source"] == "env"
    assert data["GRPC_TLS_CA_FILE"]["value"] == "/dotenv/ca.crt" and data["GRPC_TLS_CA_FILE"]["source"] == ".env"


def test_instance_aggregation_config_key_beats_env(pm: pluggy.PluginManager, cwd: Path) -> None:
    data = show_json(pm, {"WL_INSTANCE_AGGREGATION": "max"}, cwd, config={"instance_aggregation": "mean"})
    assert data["WL_INSTANCE_AGGREGATION"] == {"value": "mean", "source": "config", "owner": "weightslab-core"}


def test_config_keys_exist_only_where_the_spec_names_them(pm: pluggy.PluginManager, cwd: Path) -> None:
    keys = {s.config_key for section in all_sections(pm) if section.owner in FIRST_PARTY
            for s in section.settings().values() if s.config_key}
    assert keys == {"grpc_tls_enabled", "grpc_tls_require_client_auth", "grpc_tls_cert_dir", "grpc_tls_key_file",
                    "grpc_tls_cert_file", "grpc_tls_ca_file", "instance_aggregation"}
    # any other registered hyperparameter, even named like a setting, does not override the env
    config = {"cli_port": 1, "CLI_PORT": 1, "wl_max_points_per_sample": 1, "WL_MAX_POINTS_PER_SAMPLE": 1}
    data = show_json(pm, {"CLI_PORT": "6000", "WL_MAX_POINTS_PER_SAMPLE": "9"}, cwd, config=config)
    assert (data["CLI_PORT"]["value"], data["WL_MAX_POINTS_PER_SAMPLE"]["value"]) == (6000, 9)


def test_kwargs_beat_config_and_env(pm: pluggy.PluginManager, cwd: Path, tmp_path: Path) -> None:
    environ = {"WEIGHTSLAB_ROOT_LOG_DIR": "/env/root", "CLI_HOST": "10.0.0.1", "CLI_PORT": "6000",
               "GRPC_BACKEND_HOST": "10.0.0.2", "GRPC_BACKEND_PORT": "6001"}
    kwargs = {"root_log_dir": tmp_path / "kw", "cli_host": "127.0.0.1", "cli_port": 7000,
              "grpc_host": "127.0.0.2", "grpc_port": 7001}
    data = show_json(pm, environ, cwd, kwargs=kwargs, config={"root_log_dir": "/cfg"})
    assert data["WEIGHTSLAB_ROOT_LOG_DIR"] == {"value": str(tmp_path / "kw"), "source": "kwarg",
                                               "owner": "weightslab-core"}
    assert (data["CLI_HOST"]["value"], data["CLI_PORT"]["value"]) == ("127.0.0.1", 7000)
    assert (data["GRPC_BACKEND_HOST"]["value"], data["GRPC_BACKEND_PORT"]["value"]) == ("127.0.0.2", 7001)
    assert {data[v]["source"] for v in ("CLI_HOST", "CLI_PORT", "GRPC_BACKEND_HOST", "GRPC_BACKEND_PORT")} == {"kwarg"}


def test_loading_never_mutates_os_environ(pm: pluggy.PluginManager, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("CLI_PORT", "6000")
    for variable in SAMPLES:
        if variable != "CLI_PORT":
            monkeypatch.delenv(variable, raising=False)
    write_env(cwd, {variable: sample.raw for variable, sample in SAMPLES.items()})
    before = dict(os.environ)
    data = load_config(pm=pm, validate=False).as_json()  # os.environ + the cwd's .env
    assert dict(os.environ) == before
    assert data["CLI_PORT"] == {"value": 6000, "source": "env", "owner": "weightslab-cli"}
    assert data["VITE_PORT"]["source"] == ".env"


# -- the real console script ---------------------------------------------------------------------

def _expected(source: str) -> dict[str, dict[str, Any]]:
    return {variable: {"value": shown(variable), "source": source, "owner": sample.owner}
            for variable, sample in SAMPLES.items()}


def _in_process_twin(environ: dict[str, str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the console script prints: the resolved config as `config show` displays it
    (derived TLS file paths, ``unset`` secrets)."""
    from weightslab_cli.config_cmd import displayed

    monkeypatch.chdir(cwd)
    fresh = create_plugin_manager(environ=environ)
    return displayed(load_config(environ=environ, cwd=cwd, pm=fresh, validate=False))


def test_console_script_every_variable_by_env(cwd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = write_env(tmp_path / "other", {}, name="custom.env")
    environ = {variable: sample.raw for variable, sample in SAMPLES.items()} | {ENV_FILE: str(custom)}
    run = weightslab("config", "show", "--json", env=base_env(**environ), cwd=cwd)
    data = run.json
    for variable, row in _expected("env").items():
        assert data[variable] == row, variable
    assert data[ENV_FILE] == {"value": str(custom), "source": "env", "owner": "weightslab-core"}
    assert data == _in_process_twin(environ, cwd, monkeypatch)
    for variable in SECRETS:
        for part in SAMPLES[variable].raw.split(","):
            assert part not in run.stdout + run.stderr


def test_console_script_every_variable_by_dotenv(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(cwd, {variable: sample.raw for variable, sample in SAMPLES.items()})
    nested = cwd / "sub" / "dir"  # found from a sub-directory too
    nested.mkdir(parents=True)
    data = weightslab("config", "show", "--json", env=base_env(), cwd=nested).json
    for variable, row in _expected(".env").items():
        assert data[variable] == row, variable
    assert data[ENV_FILE] == {"value": str(cwd / ".env"), "source": "default", "owner": "weightslab-core"}
    assert data == _in_process_twin({}, nested, monkeypatch)


def test_console_script_defaults_match_in_process(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = weightslab("config", "show", "--json", env=base_env(), cwd=cwd).json
    assert {row["source"] for row in data.values()} == {"default", "derived from GRPC_TLS_CERT_DIR"}
    assert data == _in_process_twin({}, cwd, monkeypatch)
    cert_dir = Path(data["GRPC_TLS_CERT_DIR"]["value"])
    assert data["GRPC_TLS_KEY_FILE"] == {"value": str(cert_dir / "backend-server.key"),
                                         "source": "derived from GRPC_TLS_CERT_DIR", "owner": "weightslab-auth"}
    assert None not in {data[variable]["value"] for variable in SECRETS}  # an unset secret shows as unset
    assert {data[variable]["value"] for variable in SECRETS} == {"unset"}


def test_config_check_fails_on_a_bad_value_naming_it(cwd: Path) -> None:
    run = weightslab("config", "check", env=base_env(GRPC_WATCHDOG_INTERVAL_SECONDS="abc"), cwd=cwd)
    assert run.returncode != 0
    assert "GRPC_WATCHDOG_INTERVAL_SECONDS='abc': expected a positive number of seconds" in run.stderr


def test_config_show_fails_on_a_bad_dotenv_value(cwd: Path) -> None:
    write_env(cwd, {"VITE_SERVER_PROTOCOL": "ftp"})
    run = weightslab("config", "show", "--json", env=base_env(), cwd=cwd)
    assert run.returncode != 0 and run.stdout == ""
    assert "VITE_SERVER_PROTOCOL='ftp': expected one of http, https" in run.stderr


def test_config_check_passes_on_a_valid_configuration(cwd: Path) -> None:
    run = weightslab("config", "check", env=base_env(GRPC_TLS_ENABLED="0"), cwd=cwd)
    assert run.returncode == 0, run.stderr
    assert "configuration OK" in run.stdout


def test_config_show_still_shows_when_a_start_up_check_fails(cwd: Path, tmp_path: Path) -> None:
    """Missing TLS files fail `config check` (and start-up), but `config show` still shows."""
    env = base_env(GRPC_TLS_CERT_DIR=str(tmp_path / "no-certs"))
    show = weightslab("config", "show", "--json", env=env, cwd=cwd)
    assert show.json["GRPC_TLS_ENABLED"] == {"value": True, "source": "default", "owner": "weightslab-auth"}
    assert "config check" in show.stderr and "GRPC_TLS_KEY_FILE" in show.stderr
    check = weightslab("config", "check", env=env, cwd=cwd)
    assert check.returncode != 0
    assert "GRPC_TLS_KEY_FILE" in check.stderr and str(tmp_path / "no-certs") in check.stderr


def test_console_script_clamps_with_a_warning(cwd: Path) -> None:
    run = weightslab("config", "show", "--json",
                     env=base_env(WL_PREVIEW_CACHE_WARMUP_WAIT_MS="5000", VITE_HISTOGRAM_MAX_BINS="100000"), cwd=cwd)
    data = run.json
    assert data["WL_PREVIEW_CACHE_WARMUP_WAIT_MS"]["value"] == 1000
    assert data["VITE_HISTOGRAM_MAX_BINS"]["value"] == 512
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert any("WL_PREVIEW_CACHE_WARMUP_WAIT_MS" in line and "5000" in line for line in warnings), run.stderr
    assert any("VITE_HISTOGRAM_MAX_BINS" in line and "100000" in line for line in warnings), run.stderr


@pytest.mark.parametrize("as_json", [False, True])
def test_console_script_never_prints_secrets(cwd: Path, as_json: bool) -> None:
    environ = {variable: SAMPLES[variable].raw for variable in SECRETS}
    environ["WEIGHTSLAB_TRACE_PLUGINS"] = "1"  # not even in hook traces
    run = weightslab("config", "show", *(["--json"] if as_json else []), env=base_env(**environ), cwd=cwd)
    assert run.returncode == 0, run.stderr
    for variable in SECRETS:
        for part in SAMPLES[variable].raw.split(","):
            assert part not in run.stdout and part not in run.stderr
        assert shown(variable) in run.stdout
    assert "weightslab_configure" in run.stderr  # WEIGHTSLAB_TRACE_PLUGINS=1 logged the hook calls


def test_plugins_lists_every_package_with_its_version(cwd: Path) -> None:
    rows = {row["name"]: row for row in weightslab("plugins", "--json", env=base_env(), cwd=cwd).json}
    assert PLUGIN_NAMES <= set(rows)
    for row in rows.values():
        assert row["version"] == metadata.version(row["distribution"])
    table = weightslab("plugins", env=base_env(), cwd=cwd)
    assert table.returncode == 0
    for row in rows.values():
        line = next(line for line in table.stdout.splitlines() if f" {row['name']} " in line)
        assert row["distribution"] in line and row["version"] in line


def test_disabled_plugin_and_its_settings_vanish(cwd: Path) -> None:
    env = base_env(WEIGHTSLAB_DISABLED_PLUGINS="studio")
    names = {row["name"] for row in weightslab("plugins", "--json", env=env, cwd=cwd).json}
    assert "studio" not in names and PLUGIN_NAMES - {"studio"} <= names
    data = weightslab("config", "show", "--json", env=env, cwd=cwd).json
    studio_only = {v for v, s in SAMPLES.items() if s.owner == "weightslab-studio"}
    assert studio_only and not studio_only & set(data)
    assert data["GRPC_BACKEND_PORT"]["owner"] == "weightslab-grpc-server"  # still read by the gRPC server
    assert data["WEIGHTSLAB_DISABLED_PLUGINS"] == {"value": ["studio"], "source": "env", "owner": "weightslab-core"}
