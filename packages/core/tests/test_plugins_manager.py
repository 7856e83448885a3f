"""The plugin manager: entry-point discovery, WEIGHTSLAB_DISABLED_PLUGINS, WEIGHTSLAB_TRACE_PLUGINS,
versions, and the hook specifications of the architecture contract.

A throw-away distribution (a ``*.dist-info`` with an entry point in the ``weightslab`` group)
is put on ``sys.path``, so these tests exercise real entry-point loading with only the core
installed.
"""

from __future__ import annotations

import logging
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from weightslab import hookspecs
from weightslab.plugins import GROUP, create_plugin_manager, plugin_versions
from weightslab.settings import all_sections, load_config

FAKE_MODULE = "wl_fake_plugin_for_tests"
FAKE_DIST, FAKE_VERSION = "wl-fake-plugin-for-tests", "1.2.3"


@pytest.fixture
def fake_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    site.mkdir()
    (site / f"{FAKE_MODULE}.py").write_text(textwrap.dedent('''
        from typing import Annotated

        from weightslab.config import Setting, SettingsSection
        from weightslab.config import fields as f
        from weightslab.hookspecs import hookimpl

        STARTED = []


        class FakeSettings(SettingsSection):
            section = "fake"
            owner = "wl-fake-plugin-for-tests"

            colour: Annotated[str, Setting("FAKE_PLUGIN_COLOUR", f.choice("red", "blue"), "a colour")] = "red"


        @hookimpl
        def weightslab_config_sections():
            return [FakeSettings]


        @hookimpl
        def weightslab_experiment_started(experiment):  # a subset of the documented arguments is fine
            STARTED.append(experiment)
        '''), encoding="utf-8")
    info = site / f"{FAKE_MODULE}-{FAKE_VERSION}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {FAKE_DIST}\nVersion: {FAKE_VERSION}\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nfake = {FAKE_MODULE}\n")
    monkeypatch.syspath_prepend(str(site))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # create_plugin_manager also reads a .env from cwd upwards
    yield cwd
    sys.modules.pop(FAKE_MODULE, None)


def test_entry_point_plugins_are_loaded_with_their_settings(fake_plugin: Path) -> None:
    pm = create_plugin_manager(environ={})
    assert pm.get_plugin("fake") is not None and pm.get_plugin("core") is not None
    config = load_config(environ={"FAKE_PLUGIN_COLOUR": "blue"}, cwd=fake_plugin, pm=pm, validate=False)
    assert config.as_json()["FAKE_PLUGIN_COLOUR"] == {"value": "blue", "source": "env",
                                                      "owner": "wl-fake-plugin-for-tests"}
    # the core's sections come first, whatever the plugin names
    assert all_sections(pm)[0].owner == "weightslab-core"


def test_plugin_versions_list_every_plugin_with_its_distribution(fake_plugin: Path) -> None:
    rows = {row["name"]: row for row in plugin_versions(create_plugin_manager(environ={}))}
    assert rows["fake"] == {"name": "fake", "distribution": FAKE_DIST, "version": FAKE_VERSION}
    assert rows["core"] == {"name": "core", "distribution": "weightslab-core",
                            "version": metadata.version("weightslab-core")}
    # every installed weightslab plugin is listed (whatever this environment has)
    for ep in metadata.entry_points(group=GROUP):
        assert ep.name in rows


@pytest.mark.parametrize("where", ["env", ".env"])
def test_disabled_plugins_are_skipped_and_their_settings_vanish(fake_plugin: Path, where: str) -> None:
    environ = {"WEIGHTSLAB_DISABLED_PLUGINS": " other , fake "}
    if where == ".env":
        (fake_plugin / ".env").write_text(f"WEIGHTSLAB_DISABLED_PLUGINS={environ.pop('WEIGHTSLAB_DISABLED_PLUGINS')}\n")
    pm = create_plugin_manager(environ=environ)
    assert pm.get_plugin("fake") is None and pm.is_blocked("fake")
    assert "fake" not in {row["name"] for row in plugin_versions(pm)}
    config = load_config(environ=environ, cwd=fake_plugin, pm=pm, validate=False)
    assert "FAKE_PLUGIN_COLOUR" not in config.as_json() and "fake" not in config
    assert config.value("WEIGHTSLAB_DISABLED_PLUGINS") == ("other", "fake")


def test_disabling_an_unknown_plugin_is_harmless(fake_plugin: Path) -> None:
    pm = create_plugin_manager(environ={"WEIGHTSLAB_DISABLED_PLUGINS": "no-such-plugin"})
    assert pm.get_plugin("fake") is not None


def test_a_bad_plugin_setting_fails_naming_the_variable(fake_plugin: Path) -> None:
    from weightslab.config import ConfigError

    with pytest.raises(ConfigError, match=r"WEIGHTSLAB_TRACE_PLUGINS='loud': expected a boolean"):
        create_plugin_manager(environ={"WEIGHTSLAB_TRACE_PLUGINS": "loud"})


def _hook_trace_lines(caplog: pytest.LogCaptureFixture, environ: dict[str, str]) -> list[str]:
    logger = logging.getLogger("weightslab")
    saved = logger.propagate, logger.level
    logger.propagate, logger.level = True, logging.NOTSET  # an earlier configure_logging may have changed them
    try:
        pm = create_plugin_manager(environ=environ)
        with caplog.at_level(logging.INFO, logger="weightslab.plugins"):
            # only the fake plugin gets the call: installed plugins expect a real experiment
            others = [plugin for name, plugin in pm.list_name_plugin() if name != "fake" and plugin is not None]
            pm.subset_hook_caller("weightslab_experiment_started", remove_plugins=others)(
                experiment="the-experiment")
    finally:
        logger.propagate, logger.level = saved
    return [r.getMessage() for r in caplog.records if r.name == "weightslab.plugins"]


def test_trace_plugins_logs_every_hook_call(fake_plugin: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = _hook_trace_lines(caplog, {"WEIGHTSLAB_TRACE_PLUGINS": "1"})
    assert any("weightslab_experiment_started" in line for line in lines)
    assert any("finish weightslab_experiment_started" in line for line in lines)
    assert sys.modules[FAKE_MODULE].STARTED == ["the-experiment"]


def test_no_trace_by_default(fake_plugin: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert _hook_trace_lines(caplog, {}) == []


def test_hookspecs_match_the_architecture_contract() -> None:
    expected = {
        "weightslab_config_sections": False, "weightslab_configure": False,
        "weightslab_experiment_started": False, "weightslab_serve": False, "weightslab_shutdown": False,
        "weightslab_grpc_server_credentials": True, "weightslab_grpc_interceptors": False,
        "weightslab_grpc_services": False, "weightslab_sample_store": True, "weightslab_preview": True,
        "weightslab_step_end": False, "weightslab_query_agent": True, "weightslab_cli_commands": False,
    }
    found = {name: getattr(hookspecs, name) for name in dir(hookspecs) if name.startswith("weightslab_")}
    assert set(expected) <= set(found)
    for name, firstresult in expected.items():
        opts = found[name].weightslab_spec
        assert bool(opts.get("firstresult")) is firstresult, name
