"""Settings owned by weightslab-agent: OPENROUTER_API_KEY (secret) and AGENT_CONFIG_PATH."""

from __future__ import annotations

import json
from pathlib import Path

import pluggy
import pytest
from weightslab.config import ConfigError, fingerprint
from weightslab.settings import load_config

OWNER = "weightslab-agent"
KEY = "sk-or-v1-0123456789abcdef0123"


def agent_pm() -> pluggy.PluginManager:
    from weightslab import _builtin, hookspecs
    from weightslab_agent import plugin

    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    pm.register(_builtin, name="core")
    pm.register(plugin, name="agent")
    return pm


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def show(environ: dict[str, str], cwd: Path) -> dict:
    return load_config(environ=environ, cwd=cwd, pm=agent_pm(), validate=False).as_json()


def test_defaults(cwd: Path) -> None:
    data = show({}, cwd)
    assert data["OPENROUTER_API_KEY"] == {"value": None, "source": "default", "owner": OWNER}
    assert data["AGENT_CONFIG_PATH"] == {"value": None, "source": "default", "owner": OWNER}


@pytest.mark.parametrize("via", ["env", ".env"])
def test_api_key_is_read_but_only_its_fingerprint_shown(cwd: Path, via: str) -> None:
    environ = {"OPENROUTER_API_KEY": KEY}
    if via == ".env":
        (cwd / ".env").write_text(f"OPENROUTER_API_KEY={KEY}\n")
        environ = {}
    config = load_config(environ=environ, cwd=cwd, pm=agent_pm(), validate=False)
    assert config["agent"].openrouter_api_key == KEY  # usable in-process
    data = config.as_json()
    assert data["OPENROUTER_API_KEY"] == {"value": f"set (fingerprint {fingerprint(KEY)})", "source": via,
                                          "owner": OWNER}
    assert KEY not in json.dumps(data)


def test_an_empty_api_key_counts_as_unset(cwd: Path) -> None:
    assert show({"OPENROUTER_API_KEY": "  "}, cwd)["OPENROUTER_API_KEY"]["value"] is None


@pytest.mark.parametrize("via", ["env", ".env"])
def test_agent_config_path(cwd: Path, via: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WL_AGENT_TEST_BASE", "/opt/base")
    for raw, expected in (("/srv/agent", "/srv/agent"), ("~/agent", str(Path.home() / "agent")),
                          ("$WL_AGENT_TEST_BASE/agent", "/opt/base/agent")):
        if via == ".env":
            (cwd / ".env").write_text(f"AGENT_CONFIG_PATH='{raw}'\n")
        data = show({"AGENT_CONFIG_PATH": raw} if via == "env" else {}, cwd)
        assert data["AGENT_CONFIG_PATH"] == {"value": expected, "source": via, "owner": OWNER}


def test_an_empty_agent_config_path_is_rejected_naming_it(cwd: Path) -> None:
    with pytest.raises(ConfigError, match=r"AGENT_CONFIG_PATH='': expected a file system path"):
        show({"AGENT_CONFIG_PATH": ""}, cwd)
