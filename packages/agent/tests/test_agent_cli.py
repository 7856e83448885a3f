"""The agent through the CLI inspection server over a real experiment: ``ask``, ``ask --apply``
and ``agent init|models|model|reset|history|health`` with the real client, and the
``weightslab cli ask "…"`` console script in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from agent_testutil import KEY, LLMServer, make_experiment, openrouter_server, plan_reply, write_agent_config
from weightslab import _builtin, hookspecs
from weightslab.experiment import Experiment

pytest.importorskip("weightslab_cli")

from weightslab_agent import plugin as agent_plugin  # noqa: E402
from weightslab_cli import plugin as cli_plugin  # noqa: E402
from weightslab_cli.client import CliClient  # noqa: E402
from weightslab_cli.server import CliServer, start_cli_server  # noqa: E402

TRAIN_3 = {"op": "all", "filters": [{"op": "==", "column": "split", "value": "train"},
                                    {"op": "==", "column": "label", "value": 3}]}


class Served:
    def __init__(self, tmp_path: Path, ollama: LLMServer, cloud: LLMServer) -> None:
        pm = pluggy.PluginManager("weightslab")
        pm.add_hookspecs(hookspecs)
        pm.register(_builtin, name="core")
        pm.register(cli_plugin, name="cli")
        pm.register(agent_plugin, name="agent")
        conf = tmp_path / "agent-conf"
        write_agent_config(conf, ollama_host="127.0.0.1", ollama_port=ollama.port,
                           openrouter_base_url=cloud.base_url)
        self.env_file = tmp_path / "empty.env"
        self.env_file.write_text("")
        environ = {"AGENT_CONFIG_PATH": str(conf), "WEIGHTSLAB_ENV_FILE": str(self.env_file)}
        self.experiment: Experiment = make_experiment(tmp_path / "root", environ, pm=pm)
        self.discovery = tmp_path / "cli.json"
        self.server: CliServer = start_cli_server(self.experiment, discovery_file=self.discovery)
        self.client = CliClient("127.0.0.1", self.server.port, timeout=20)

    def ask(self, *words: str) -> dict[str, Any]:
        return self.client.request(list(words))

    def audit(self) -> list[dict[str, Any]]:
        path = self.experiment.root_log_dir / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def close(self) -> None:
        self.client.close()
        self.server.stop()
        self.experiment.shutdown()


@pytest.fixture
def cloud() -> Iterator[LLMServer]:
    server = openrouter_server(KEY)
    yield server
    server.stop()


@pytest.fixture
def served(tmp_path: Path, ollama: LLMServer, cloud: LLMServer) -> Iterator[Served]:
    s = Served(tmp_path, ollama, cloud)
    yield s
    s.close()


def test_ask_previews_then_ask_apply_applies(served: Served, ollama: LLMServer) -> None:
    ollama.script.append(plan_reply({"step": "top_percent", "column": "suspected_mislabel", "percent": 5},
                                    {"step": "tag", "tag": "review"}))
    reply = served.ask("ask", "tag the top 5% by suspected_mislabel as review")
    assert reply["ok"], reply
    preview = reply["answer"]
    assert preview["dry_run"] and preview["matched"] == 10 and "review" not in served.experiment.frame().tags
    assert f"ask --apply {preview['plan_id']}" in preview["answer"]

    applied = served.ask("ask", "--apply", preview["plan_id"])
    assert applied["ok"] and applied["answer"]["applied"] and applied["answer"]["changed"] == 10
    frame = served.experiment.frame()
    assert sorted(frame.sample_id[frame.tags["review"]]) == sorted(preview["sample_ids"])
    records = served.audit()
    assert [r["action"] for r in records][-3:] == ["agent_query", "edit_samples", "agent_query"]
    assert records[-3]["params"] == {"question": "tag the top 5% by suspected_mislabel as review", "preview": False}
    assert records[-2]["caller"]["question"] == "tag the top 5% by suspected_mislabel as review"
    assert records[-2]["caller"]["via"] == "cli" and records[-2]["caller"]["transport"] == "agent"
    assert records[-1]["params"]["apply"] is True and records[-1]["result"]["applied"] is True

    again = served.ask("ask", "--apply")
    assert not again["ok"] and "nothing to apply" in again["error"]


def test_agent_lifecycle_commands(served: Served, ollama: LLMServer, cloud: LLMServer) -> None:
    health = served.ask("agent", "health")["agent"]
    assert health["available"] and health["provider"] == "ollama"
    models = served.ask("agent", "models")["agent_models"]
    assert models["current"] == "llama3.2:3b" and [m["id"] for m in models["models"]] == ["llama3.2:3b", "qwen2.5:7b"]
    assert served.ask("agent", "model", "qwen2.5:7b")["agent"]["model"] == "qwen2.5:7b"
    ollama.script.append(plan_reply())
    served.ask("ask", "anything?")
    assert ollama.chats()[-1].body["model"] == "qwen2.5:7b"

    typo = served.ask("agent", "init", "--key", "sk-or-typo-cli", "--modle", "x")
    assert not typo["ok"] and "unknown option --modle" in typo["error"]
    bad = served.ask("agent", "init", "--provider", "openrouter", "--key", "sk-or-wrong-cli")
    assert not bad["ok"] and "rejected" in bad["error"] and "sk-or-wrong-cli" not in bad["error"]
    init = served.ask("agent", "init", "--provider", "openrouter", "--key", KEY, "--model", "openai/gpt-4o-mini")
    assert init["ok"] and init["agent"]["provider"] == "openrouter" and init["agent"]["model"] == "openai/gpt-4o-mini"
    assert KEY not in json.dumps(init)
    assert served.ask("agent", "reset")["agent"]["provider"] == "ollama"
    history = served.ask("agent", "history", "4")["agent_history"]
    assert [e["kind"] for e in history] == ["question", "answer", "connect", "reset"]
    audit_text = (served.experiment.root_log_dir / "audit.jsonl").read_text()
    assert KEY not in audit_text and "sk-or-wrong-cli" not in audit_text and "sk-or-typo-cli" not in audit_text
    actions = [r["action"] for r in served.audit()]
    assert actions[-5:] == ["agent_query", "agent_init", "agent_init", "agent_init", "agent_reset"]
    assert not served.ask("agent", "frobnicate")["ok"]
    assert served.ask("agent", "history", "x")["error"] == "history limit='x': expected a positive integer"


def _weightslab(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(served.discovery.parent),
           "WEIGHTSLAB_ENV_FILE": str(served.env_file), "GRPC_TLS_ENABLED": "0", "COLUMNS": "200"}
    code = "import sys; from weightslab_cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "cli", "--discovery-file", str(served.discovery), *args],
                          env=env, capture_output=True, text=True, timeout=60)


def test_weightslab_cli_ask_console_script(served: Served, ollama: LLMServer) -> None:
    ollama.script.append(plan_reply({"step": "filter", "where": TRAIN_3},
                                    {"step": "sort", "by": [{"column": "loss", "descending": True}]},
                                    {"step": "limit", "n": 20}))
    run = _weightslab(served, "ask", "show the 20 training samples with the highest loss labelled 3")
    assert run.returncode == 0, run.stderr
    assert "20 of 20 matching samples" in run.stdout
    assert 'plan: filter split == "train" and label == 3 → sort by loss desc → limit 20' in run.stdout
    assert "193" in run.stdout and "183" in run.stdout  # the rows table

    run = _weightslab(served, "agent", "history", "2")
    assert run.returncode == 0 and "agent history" in run.stdout and "show the 20 training" in run.stdout
    run = _weightslab(served, "agent", "models")
    assert run.returncode == 0 and "current: llama3.2:3b" in run.stdout and "qwen2.5:7b" in run.stdout

    ollama.script.append(plan_reply({"step": "group", "by": ["label"],
                                     "aggregates": [{"fn": "mean", "column": "loss"}]}))
    run = _weightslab(served, "--json", "ask", "what is the mean loss per class?")
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)["answer"]
    assert answer["kind"] == "aggregate" and len(answer["groups"]) == 10

    ollama.script.append(plan_reply({"step": "filter", "where": {"op": "has_tag", "tag": "blurry"}},
                                    {"step": "discard"}))
    run = _weightslab(served, "ask", "discard samples tagged blurry")
    assert run.returncode == 0 and "Preview: would discard 10 sample(s)" in run.stdout
    assert not served.experiment.frame().discarded.any()
    run = _weightslab(served, "ask", "--apply")
    assert run.returncode == 0 and "Applied: discarded 10 sample(s), 10 changed." in run.stdout, run.stdout
    assert served.experiment.frame().discarded.sum() == 10
