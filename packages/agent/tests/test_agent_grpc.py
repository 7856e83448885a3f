"""The agent through the real gRPC server (TLS + mTLS + token, 127.0.0.1:0) over a real experiment,
with the real agent plugin and a local HTTP server speaking Ollama's wire format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pluggy
import pytest
from agent_testutil import KEY, LLMServer, make_experiment, openrouter_server, plan_reply, write_agent_config
from weightslab import _builtin, hookspecs
from weightslab.experiment import Experiment

grpc_server = pytest.importorskip("weightslab_grpc_server")
auth = pytest.importorskip("weightslab_auth")

from weightslab_agent import plugin as agent_plugin  # noqa: E402
from weightslab_auth import plugin as auth_plugin  # noqa: E402
from weightslab_auth.client import secure_channel  # noqa: E402
from weightslab_auth.pki import PKIPaths, create_dev_pki, load_token  # noqa: E402
from weightslab_grpc_server import plugin as grpc_plugin  # noqa: E402
from weightslab_grpc_server._generated import experiment_pb2 as pb  # noqa: E402
from weightslab_grpc_server._generated import experiment_pb2_grpc as pb_grpc  # noqa: E402

TIMEOUT = 20.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKIPaths:
    return create_dev_pki(tmp_path_factory.mktemp("pki"))


class Served:
    def __init__(self, tmp_path: Path, pki: PKIPaths, ollama: LLMServer, **yaml_keys: Any) -> None:
        pm = pluggy.PluginManager("weightslab")
        pm.add_hookspecs(hookspecs)
        pm.register(_builtin, name="core")
        pm.register(auth_plugin, name="auth")
        pm.register(grpc_plugin, name="grpc_server")
        pm.register(agent_plugin, name="agent")
        conf = tmp_path / "agent-conf"
        write_agent_config(conf, ollama_host="127.0.0.1", ollama_port=ollama.port, **yaml_keys)
        self.token = load_token(pki.directory)
        environ = {"GRPC_TLS_CERT_DIR": str(pki.directory), "GRPC_AUTH_TOKEN": self.token,
                   "AGENT_CONFIG_PATH": str(conf), "GRPC_TLS_ENABLED": "1"}
        self.experiment: Experiment = make_experiment(tmp_path / "root", environ, pm=pm)
        self.experiment.reload_config(grpc_host="127.0.0.1", grpc_port=0)
        self.experiment.serve_options["grpc"] = True
        (self.handle,) = [h for h in pm.hook.weightslab_serve(experiment=self.experiment,
                                                               config=self.experiment.config) if h is not None]
        self.channel = secure_channel(f"127.0.0.1:{self.handle.port}", ca=pki.ca_cert, cert=pki.envoy_client_cert,
                                      key=pki.envoy_client_key, token=self.token,
                                      options=[("grpc.enable_http_proxy", 0)])
        self.stub = pb_grpc.ExperimentServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.handle.stop(grace=0)
        self.experiment.shutdown()

    def audit(self) -> list[dict[str, Any]]:
        path = self.experiment.root_log_dir / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def served(tmp_path: Path, pki: PKIPaths, ollama: LLMServer) -> Iterator[Served]:
    s = Served(tmp_path, pki, ollama)
    yield s
    s.close()


def test_health_query_history_over_grpc(served: Served, ollama: LLMServer) -> None:
    health = served.stub.AgentHealth(pb.AgentHealthRequest(), timeout=TIMEOUT)
    assert health.available and health.initialized and health.provider == "ollama"
    assert health.model == "llama3.2:3b" and "0.6.2" in health.message
    assert json.loads(health.details_json)["details"]["config_origin"] == "AGENT_CONFIG_PATH"

    ollama.script.append(plan_reply({"step": "filter", "where": {"op": "all", "filters": [
        {"op": "==", "column": "split", "value": "train"}, {"op": "==", "column": "label", "value": 3}]}},
        {"step": "sort", "by": [{"column": "loss", "descending": True}]}, {"step": "limit", "n": 20}))
    reply = served.stub.AgentQuery(pb.AgentQueryRequest(
        question="show the 20 training samples with the highest loss labelled 3"), timeout=TIMEOUT)
    assert reply.matched == 20 and list(reply.sample_ids)[:3] == ["193", "183", "173"]
    assert json.loads(reply.plan_json)["steps"][2] == {"step": "limit", "n": 20}
    assert reply.plan_text.endswith("limit 20") and not reply.applied
    assert json.loads(reply.details_json)["rows"][0]["label"] == 3

    ollama.script.append(plan_reply({"step": "group", "by": ["label"],
                                     "aggregates": [{"fn": "mean", "column": "loss"}]}))
    reply = served.stub.AgentQuery(pb.AgentQueryRequest(question="what is the mean loss per class?"),
                                   timeout=TIMEOUT)
    assert len(json.loads(reply.details_json)["groups"]) == 10 and "mean(loss)" in reply.answer

    history = served.stub.AgentHistory(pb.AgentHistoryRequest(limit=3), timeout=TIMEOUT)
    assert [e.kind for e in history.entries] == ["answer", "question", "answer"]
    assert history.entries[1].text == "what is the mean loss per class?"
    actions = [r["action"] for r in served.audit()]
    assert actions.count("agent_query") == 2


def test_edits_are_previewed_over_grpc(served: Served, ollama: LLMServer) -> None:
    ollama.script.append(plan_reply({"step": "filter", "where": {"op": "has_tag", "tag": "blurry"}},
                                    {"step": "discard"}))
    for preview in (True, False):  # without an explicit apply, an action never changes the table
        reply = served.stub.AgentQuery(pb.AgentQueryRequest(question="discard samples tagged blurry",
                                                            preview=preview), timeout=TIMEOUT)
        assert reply.matched == 10 and not reply.applied
        assert json.loads(reply.details_json)["dry_run"] is True
        ollama.script.append(plan_reply({"step": "filter", "where": {"op": "has_tag", "tag": "blurry"}},
                                        {"step": "discard"}))
    assert not served.experiment.frame().discarded.any()
    # the loop left one scripted reply: the next question gets it
    preview = served.stub.AgentQuery(pb.AgentQueryRequest(question="discard samples tagged blurry"), timeout=TIMEOUT)
    assert preview.dry_run and preview.plan_id and not preview.applied
    applied = served.stub.AgentQuery(pb.AgentQueryRequest(apply=True, plan_id=preview.plan_id), timeout=TIMEOUT)
    assert applied.applied and not applied.dry_run and applied.matched == 10
    assert sorted(applied.sample_ids) == sorted(preview.sample_ids)
    frame = served.experiment.frame()
    assert sorted(frame.sample_id[frame.discarded]) == sorted(preview.sample_ids)
    records = served.audit()
    assert [r["action"] for r in records][-2:] == ["edit_samples", "agent_query"]
    assert records[-2]["caller"]["via"] == "grpc" and records[-2]["caller"]["transport"] == "agent"
    assert records[-2]["caller"]["question"] == "discard samples tagged blurry"
    assert records[-1]["params"]["apply"] is True and records[-1]["params"]["plan_id"] == preview.plan_id
    with pytest.raises(grpc.RpcError) as err:  # applied once
        served.stub.AgentQuery(pb.AgentQueryRequest(apply=True, plan_id=preview.plan_id), timeout=TIMEOUT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "no previewed plan" in err.value.details()


def test_provider_errors_are_clear_grpc_statuses(served: Served, ollama: LLMServer) -> None:
    ollama.script.append(plan_reply({"step": "sort", "by": [{"column": "nope"}]}))
    ollama.script.append(plan_reply({"step": "sort", "by": [{"column": "nope"}]}))
    with pytest.raises(grpc.RpcError) as err:
        served.stub.AgentQuery(pb.AgentQueryRequest(question="q"), timeout=TIMEOUT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "did not produce a valid plan" in err.value.details() and "unknown column 'nope'" in err.value.details()

    ollama.health_status = 500
    ollama.script.append(plan_reply())
    ollama.stop()  # the provider goes down: UNAVAILABLE naming it and what to do, training unaffected
    with pytest.raises(grpc.RpcError) as err:
        served.stub.AgentQuery(pb.AgentQueryRequest(question="q"), timeout=TIMEOUT)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert err.value.details().startswith("ollama: cannot reach") and "ollama serve" in err.value.details()
    health = served.stub.AgentHealth(pb.AgentHealthRequest(), timeout=TIMEOUT)
    assert not health.available and "cannot reach" in health.message
    assert served.stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT).samples == 240


def test_init_models_change_model_reset_over_grpc(tmp_path: Path, pki: PKIPaths, ollama: LLMServer) -> None:
    cloud = openrouter_server(KEY)
    # the YAML file names the OpenRouter-compatible base URL every cloud call uses
    served = Served(tmp_path, pki, ollama, openrouter_base_url=cloud.base_url)
    try:
        with pytest.raises(grpc.RpcError) as err:
            served.stub.AgentInit(pb.AgentInitRequest(provider="openrouter", api_key="sk-or-wrong"), timeout=TIMEOUT)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "rejected" in err.value.details()
        status = served.stub.AgentInit(pb.AgentInitRequest(provider="openrouter", api_key=KEY,
                                                           model="openai/gpt-4o-mini"), timeout=TIMEOUT)
        assert status.initialized and status.available and status.provider == "openrouter"
        models = served.stub.AgentModels(pb.AgentModelsRequest(), timeout=TIMEOUT)
        assert models.current == "openai/gpt-4o-mini" and [m.id for m in models.models][0].startswith("meta-llama")
        status = served.stub.AgentChangeModel(pb.AgentChangeModelRequest(model="meta-llama/llama-3.3-70b-instruct"),
                                              timeout=TIMEOUT)
        assert status.model == "meta-llama/llama-3.3-70b-instruct"
        assert {r.path for r in cloud.requests} == {"/api/v1/models"}
        assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in cloud.requests[1:])
        status = served.stub.AgentReset(pb.AgentResetRequest(), timeout=TIMEOUT)
        assert status.provider == "ollama"  # the configured local provider stays
        kinds = [e.kind for e in served.stub.AgentHistory(pb.AgentHistoryRequest(), timeout=TIMEOUT).entries]
        assert kinds == ["connect", "model_change", "reset"]
        audit_text = (served.experiment.root_log_dir / "audit.jsonl").read_text()
        assert KEY not in audit_text and "sk-or-wrong" not in audit_text
        assert [r["action"] for r in served.audit()][-4:] == ["agent_init", "agent_init", "agent_change_model",
                                                              "agent_reset"]
        assert all(x["caller"]["transport"] == "grpc" for x in served.audit()[-4:])
    finally:
        served.close()
        cloud.stop()
