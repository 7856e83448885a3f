"""agent_config.yaml: lookup order (AGENT_CONFIG_PATH, repository, package, cwd), every key with
its default, validation errors naming file and key, and OPENROUTER_API_KEY preferred over YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from agent_testutil import KEY, LLMServer, plan_reply, write_agent_config
from weightslab.config import ConfigError
from weightslab.experiment import Experiment
from weightslab_agent.agent import QueryAgent
from weightslab_agent.agent_config import (
    PACKAGE_FILE,
    AgentConfig,
    find_config_file,
    load_agent_config,
    parse_config,
    training_script_dir,
)

DEFAULTS = {"provider": "ollama", "ollama_model": "llama3.2:3b", "ollama_host": "localhost", "ollama_port": 11435,
            "openrouter_model": "meta-llama/llama-3.3-70b-instruct",
            "openrouter_base_url": "https://openrouter.ai/api/v1", "openrouter_request_timeout": 15.0,
            "openrouter_api_key": None, "fallback_to_local": False}


def test_every_key_has_the_documented_default() -> None:
    assert AgentConfig().model_dump() == DEFAULTS
    shipped = yaml.safe_load(PACKAGE_FILE.read_text())["agent"]
    assert parse_config(PACKAGE_FILE.read_text(), "pkg").model_dump() == DEFAULTS
    assert set(shipped) == set(DEFAULTS) - {"openrouter_api_key"}  # no key in a shipped file


def _layout(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    override, repo, cwd = tmp_path / "override", tmp_path / "repo", tmp_path / "cwd"
    (repo / ".git").mkdir(parents=True)
    script_dir = repo / "train" / "scripts"
    script_dir.mkdir(parents=True)
    cwd.mkdir()
    return override, repo, script_dir, cwd


def test_lookup_order(tmp_path: Path) -> None:
    override, repo, script_dir, cwd = _layout(tmp_path)
    package = tmp_path / "pkg" / "agent_config.yaml"
    write_agent_config(package.parent, ollama_model="from-package")
    write_agent_config(cwd, ollama_model="from-cwd")
    write_agent_config(repo, ollama_model="from-repo")
    write_agent_config(override, ollama_model="from-override")

    def winner() -> tuple[str, str]:
        found = find_config_file(override, script_dir=script_dir, cwd=cwd, package_file=package)
        assert found.path is not None
        return found.origin, parse_config(found.path.read_text(), str(found.path)).ollama_model

    assert winner() == ("AGENT_CONFIG_PATH", "from-override")
    (override / "agent_config.yaml").unlink()  # a set AGENT_CONFIG_PATH without the file: skipped
    assert winner() == ("repository", "from-repo")
    (repo / "agent_config.yaml").unlink()
    assert winner() == ("package", "from-package")
    package.unlink()
    assert winner() == ("cwd", "from-cwd")
    (cwd / "agent_config.yaml").unlink()
    assert find_config_file(override, script_dir=script_dir, cwd=cwd, package_file=package).origin == "none"


def test_without_override_the_shipped_defaults_win(tmp_path: Path) -> None:
    settings, found = load_agent_config(None, script_dir=None, cwd=tmp_path)
    assert found.path == PACKAGE_FILE and found.origin == "package"
    assert settings == AgentConfig()
    assert "(package)" in found.describe()


def test_repository_root_is_found_from_the_training_script(tmp_path: Path) -> None:
    _, repo, script_dir, _ = _layout(tmp_path)
    script = script_dir / "train.py"
    script.write_text("")
    assert training_script_dir(str(script)) == script_dir
    assert training_script_dir("-c") is None
    write_agent_config(repo, provider="openrouter")
    settings, found = load_agent_config(None, script_dir=script_dir)
    assert found.origin == "repository" and settings.provider == "openrouter"


def test_agent_config_path_through_the_settings(tmp_path: Path) -> None:
    """AGENT_CONFIG_PATH (resolved by the settings system) picks the file the agent reads."""
    from weightslab.config import resolve
    from weightslab_agent.plugin import weightslab_query_agent
    from weightslab_agent.settings import AgentSettings

    write_agent_config(tmp_path / "conf", ollama_model="custom:1b", ollama_port=12345)
    config = resolve([AgentSettings], environ={"AGENT_CONFIG_PATH": str(tmp_path / "conf")}, env_file=None)
    agent = weightslab_query_agent(config)
    status = agent.status()
    assert status["model"] == "custom:1b"
    assert status["details"]["config_file"] == str(tmp_path / "conf" / "agent_config.yaml")
    assert status["details"]["config_origin"] == "AGENT_CONFIG_PATH"
    assert weightslab_query_agent(config) is agent  # one agent per configuration


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("agent:\n  ollama_port: abc\n", "agent.ollama_port='abc'"),
    ("agent:\n  ollama_port: 70000\n", "agent.ollama_port=70000"),
    ("agent:\n  provider: claude\n", "agent.provider='claude'"),
    ("agent:\n  openrouter_request_timeout: -1\n", "agent.openrouter_request_timeout=-1"),
    ("agent:\n  openrouter_base_url: ftp://x\n", "expected an http(s) URL"),
    ("agent:\n  fallback_to_local: maybe\n", "expected one of 1/true/yes/on or 0/false/no/off"),
    ("agent:\n  olama_model: x\n", "agent.olama_model: unknown key; known keys: provider, ollama_model"),
    ("agents:\n  provider: ollama\n", "unknown top-level key(s) agents"),
    ("agent: [1, 2]\n", "'agent:' must be a mapping"),
    ("agent: {provider: [\n", "not valid YAML"),
])
def test_bad_values_name_the_file_and_the_key(yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(yaml_text, "/x/agent_config.yaml")
    assert str(err.value).startswith("/x/agent_config.yaml: ") and message in str(err.value)


def test_booleans_accept_the_documented_words() -> None:
    for word, value in (("yes", True), ("'on'", True), ("'1'", True), ("'off'", False), ("'No'", False)):
        assert parse_config(f"agent:\n  fallback_to_local: {word}\n", "f").fallback_to_local is value


def test_yaml_key_is_never_shown_and_env_key_wins(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("agent:\n  openrouter_api_key: [sk-or-yaml-secret]\n", "f")
    assert "sk-or-yaml-secret" not in str(err.value)
    settings = parse_config("agent:\n  provider: openrouter\n  openrouter_api_key: sk-or-yaml\n", "f")
    assert "sk-or-yaml" not in repr(settings)
    agent = QueryAgent(settings, env_api_key="sk-or-env")
    assert agent._configured_key == "sk-or-env"
    assert QueryAgent(settings)._configured_key == "sk-or-yaml"
    assert QueryAgent(settings).status()["provider"] == "openrouter"


def test_ollama_url_forms() -> None:
    assert AgentConfig().ollama_url == "http://localhost:11435"
    assert AgentConfig(ollama_host="::1", ollama_port=9).ollama_url == "http://[::1]:9"
    assert AgentConfig(ollama_host="https://gpu-box", ollama_port=9).ollama_url == "https://gpu-box:9"
    assert AgentConfig(ollama_host="http://gpu-box:7000").ollama_url == "http://gpu-box:7000"


def test_openrouter_api_key_from_the_environment_wins_over_yaml(tmp_path: Path, openrouter: LLMServer,
                                                                experiment: Experiment) -> None:
    """OPENROUTER_API_KEY (env or .env, resolved by the settings system) is the key sent."""
    from weightslab.config import resolve
    from weightslab_agent.plugin import weightslab_query_agent
    from weightslab_agent.settings import AgentSettings

    conf = write_agent_config(tmp_path / "conf", provider="openrouter", openrouter_base_url=openrouter.base_url,
                              openrouter_api_key="sk-or-from-yaml").parent
    for source in ("env", ".env"):
        env_file = tmp_path / f"{source}.env"
        env_file.write_text(f"OPENROUTER_API_KEY={KEY}\n" if source == ".env" else "")
        environ = {"AGENT_CONFIG_PATH": str(conf)} | ({"OPENROUTER_API_KEY": KEY} if source == "env" else {})
        config = resolve([AgentSettings], environ=environ, env_file=env_file)
        assert config.source("OPENROUTER_API_KEY") == source
        agent = weightslab_query_agent(config)
        openrouter.script.append(plan_reply())
        agent.query("q", experiment=experiment)
        assert openrouter.chats()[-1].headers["Authorization"] == f"Bearer {KEY}"
    config = resolve([AgentSettings], environ={"AGENT_CONFIG_PATH": str(conf)}, env_file=None)
    openrouter.api_key = "sk-or-from-yaml"
    openrouter.script.append(plan_reply())
    weightslab_query_agent(config).query("q", experiment=experiment)  # no env key: the YAML key is used
    assert openrouter.chats()[-1].headers["Authorization"] == "Bearer sk-or-from-yaml"


def test_config_show_names_the_file_that_won(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    pytest.importorskip("weightslab_cli")
    conf = write_agent_config(tmp_path / "conf", ollama_model="x").parent
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "WEIGHTSLAB_ENV_FILE": str(env_file),
            "COLUMNS": "300"}
    code = "import sys; from weightslab_cli.main import main; sys.exit(main(sys.argv[1:]))"

    def show(**env: str) -> str:
        run = subprocess.run([sys.executable, "-c", code, "config", "show"], env=base | env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        return run.stdout

    assert f"agent_config.yaml: {conf / 'agent_config.yaml'} (AGENT_CONFIG_PATH)" in show(AGENT_CONFIG_PATH=str(conf))
    assert f"agent_config.yaml: {PACKAGE_FILE} (package)" in show()
