"""The watchdog against the real gRPC server package: a stuck RPC restarts the real server on
the same port with the experiment intact (real TLS + mTLS + token, real core Experiment)."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
from weightslab.experiment import Experiment
from weightslab.hookspecs import hookimpl
from weightslab.plugins import create_plugin_manager

pki = pytest.importorskip("weightslab_auth.pki")
pb = pytest.importorskip("weightslab_grpc_server._generated.experiment_pb2")
pb_grpc = pytest.importorskip("weightslab_grpc_server._generated.experiment_pb2_grpc")
from weightslab_auth.client import secure_channel  # noqa: E402


class BlockingAgent:
    """An agent whose queries block until released: a stand-in for a hung LLM provider call."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def health(self):
        return {"available": True, "initialized": True, "provider": "blocking", "model": "m"}

    def query(self, question, *, preview=False, experiment=None):
        self.entered.set()
        self.release.wait(30)
        return {"plan": {}, "plan_text": "", "answer": "late", "matched": 0, "sample_ids": [], "applied": False}

    def init(self, provider=None, api_key=None, model=None):
        return self.health()

    def models(self):
        return {"current": "m", "models": [{"id": "m"}]}

    def change_model(self, model):
        return self.health()

    def reset(self):
        return self.health()

    def history(self, limit=100):
        return []


def test_the_blocking_agent_implements_the_query_agent_protocol():
    from weightslab.contracts import QueryAgent, conformance

    assert conformance(BlockingAgent(), QueryAgent) == []


class AgentPlugin:
    def __init__(self, agent: BlockingAgent) -> None:
        self.agent = agent

    @hookimpl
    def weightslab_query_agent(self, config):
        return self.agent


def test_stuck_rpc_restarts_the_real_server_and_state_survives(tmp_path):
    paths = pki.ensure_dev_pki(tmp_path / "certs")
    token = pki.load_token(tmp_path / "certs")
    environ = {
        "GRPC_TLS_CERT_DIR": str(paths.directory), "GRPC_AUTH_TOKEN": token,
        "GRPC_WATCHDOG_STUCK_SECONDS": "0.2", "GRPC_WATCHDOG_INTERVAL_SECONDS": "3600",  # polled by hand
        "GRPC_WATCHDOG_RESTART_THRESHOLD": "2", "WEIGHTSLAB_DISABLED_PLUGINS": "cli,data_cache,agent,studio",
        "WEIGHTSLAB_LOG_LEVEL": "WARNING",
    }
    agent = BlockingAgent()
    pm = create_plugin_manager(environ)
    pm.register(AgentPlugin(agent), name="blocking-agent")
    exp = Experiment(kwargs={"root_log_dir": tmp_path / "run", "grpc_host": "127.0.0.1", "grpc_port": 0},
                     environ=environ, pm=pm)
    exp.start()
    exp.register_samples("train", ["a", "b", "c"], np.array([0, 1, 2]))
    exp.edit("tag", ids=["b"], tag="keep")
    exp.serve_options["grpc"] = True
    pm.hook.weightslab_configure(config=exp.config)
    pm.hook.weightslab_serve(experiment=exp, config=exp.config)
    try:
        server, watchdog = exp.services["grpc"], exp.services["watchdog"]
        port = server.port
        target = f"127.0.0.1:{port}"

        def stub():
            channel = secure_channel(target, ca=paths.ca_cert, cert=paths.envoy_client_cert,
                                     key=paths.envoy_client_key, token=token)
            return channel, pb_grpc.ExperimentServiceStub(channel)

        channel, client = stub()
        assert client.GetStatus(pb.GetStatusRequest(), timeout=10).samples == 3
        errors: list[BaseException] = []

        def hung_call():
            try:
                client.AgentQuery(pb.AgentQueryRequest(question="anything"), timeout=20)
            except grpc.RpcError as exc:  # the restart cuts this call off
                errors.append(exc)

        caller = threading.Thread(target=hung_call, daemon=True)
        caller.start()
        assert agent.entered.wait(10)
        deadline = time.monotonic() + 10
        while watchdog.poll_once().rpc.healthy:  # wait until the call is older than the threshold
            assert time.monotonic() < deadline, "the blocked RPC never counted as stuck"
            threading.Event().wait(0.02)
        # that poll was unhealthy #1; the next one reaches the threshold of 2 and restarts
        second = watchdog.poll_once().rpc
        assert second.action == "restarted"
        assert server.port == port
        channel.close()
        channel, client = stub()
        status = client.GetStatus(pb.GetStatusRequest(), timeout=10)
        assert status.samples == 3
        assert list(exp.frame().tags["keep"]) == [False, True, False]  # state intact
        assert watchdog.poll_once().rpc.healthy  # in-flight table reset
        agent.release.set()
        caller.join(10)
        channel.close()
    finally:
        agent.release.set()
        exp.shutdown()
