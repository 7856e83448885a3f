"""Settings owned by weightslab-agent (the YAML keys live in agent_config.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from weightslab.config import Setting, SettingsSection
from weightslab.config import fields as f


class AgentSettings(SettingsSection):
    section = "agent"
    owner = "weightslab-agent"

    openrouter_api_key: Annotated[str | None, Setting(
        "OPENROUTER_API_KEY", f.text, "OpenRouter API key.", secret=True)] = None
    agent_config_path: Annotated[Path | None, Setting(
        "AGENT_CONFIG_PATH", f.path, "Directory override for agent_config.yaml.")] = None

    def notes(self) -> list[str]:
        """Which ``agent_config.yaml`` wins the lookup (shown by ``weightslab config show``)."""
        from weightslab_agent.agent_config import find_config_file, training_script_dir

        return [find_config_file(self.agent_config_path, script_dir=training_script_dir()).describe()]
