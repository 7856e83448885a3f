"""Helpers of the grpc_server tests: real servers on 127.0.0.1:0 with real certificates over a
real core Experiment.

The plugin manager holds the core, weightslab-auth (credentials + token interceptor), this
package and a small test plugin (a stand-in ``watchdog`` settings section so the lock timeout
can be set, a preview hook and a fake agent) — other installed packages cannot interfere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import grpc
import numpy as np
import pluggy
import pytest
from weightslab import _builtin, hookspecs
from weightslab.config import Setting, SettingsSection
from weightslab.config import fields as f
from weightslab.experiment import Experiment
from weightslab.hookspecs import hookimpl
from weightslab.hyperparams import HyperParameters
from weightslab_auth import plugin as auth_plugin
from weightslab_auth.client import secure_channel
from weightslab_auth.pki import PKIPaths
from weightslab_grpc_server import plugin as grpc_plugin
from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_grpc_server._generated import experiment_pb2_grpc as pb_grpc
from weightslab_grpc_server.server import GrpcServerHandle

TIMEOUT = 10.0


# -- a test plugin ---------------------------------------------------------------------


class StandInWatchdogSettings(SettingsSection):
    """The one watchdog setting the servicer reads (the real package is not a test dependency)."""

    section = "watchdog"
    owner = "grpc-server-tests"

    stuck_seconds: Annotated[float, Setting(
        "GRPC_WATCHDOG_STUCK_SECONDS", f.positive_seconds, "lock timeout of handlers")] = 60.0


class FakeAgent:
    def __init__(self) -> None:
        self.model = "tiny-model"
        self.initialized = False
        self.entries: list[dict[str, Any]] = []

    def health(self) -> dict[str, Any]:
        return {"available": True, "initialized": self.initialized, "provider": "fake", "model": self.model}

    def query(self, question: str, *, preview: bool = False, experiment: Any = None) -> dict[str, Any]:
        plan = {"op": "tag", "query": "loss > 0.5", "tag": "agent"}
        self.entries.append({"kind": "question", "text": question})
        result = {"plan": plan, "plan_text": "tag rows with loss > 0.5 as agent", "answer": "ok",
                  "matched": 3, "sample_ids": ["1", "2", "3"], "applied": not preview}
        if question == "boom":
            raise RuntimeError("agent exploded")
        if question == "bad":
            raise ValueError("question: cannot understand")
        return result

    def init(self, provider: str | None = None, api_key: str | None = None, model: str | None = None) -> dict:
        self.initialized = True
        if model:
            self.model = model
        self.entries.append({"kind": "connect", "text": f"connected to {provider}"})
        return self.health()

    def models(self) -> dict[str, Any]:
        return {"current": self.model, "models": [{"id": "tiny-model"}, {"id": "big-model", "description": "big"}]}

    def change_model(self, model: str) -> dict[str, Any]:
        self.model = model
        self.entries.append({"kind": "model_change", "text": model})
        return self.health()

    def reset(self) -> dict[str, Any]:
        self.initialized = False
        self.entries.append({"kind": "reset", "text": "reset"})
        return self.health()

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.entries[-limit:]


class HooksForTests:
    def __init__(self) -> None:
        self.agent: FakeAgent | None = FakeAgent()
        self.previews: list[tuple[Any, int]] = []
        self.interceptors: list[Any] = []

    @hookimpl
    def weightslab_config_sections(self) -> list[Any]:
        sections: list[Any] = [StandInWatchdogSettings]
        try:  # WL_MAX_POINTS_PER_SAMPLE, WL_DEFAULT_THUMBNAIL_SIZE (data_cache's settings only)
            from weightslab_data_cache.settings import DataCacheSettings
        except ImportError:
            pass
        else:
            sections.append(DataCacheSettings)
        return sections

    @hookimpl
    def weightslab_preview(self, sample: Any, size: int) -> Any:
        """``sample`` is the dataset item (``experiment.load_sample``)."""
        self.previews.append((sample, size))
        media = np.asarray(sample[0] if isinstance(sample, tuple) else sample)
        return (f"thumb:{media.shape}:{float(media.flat[0])}:{size}".encode(), "image/x-test")

    @hookimpl
    def weightslab_query_agent(self, config: Any) -> Any:
        return self.agent

    @hookimpl
    def weightslab_grpc_interceptors(self, config: Any, experiment: Any) -> list[Any]:
        return list(self.interceptors)


class FakeEvaluation:
    def __init__(self) -> None:
        self.state = "idle"

    def start(self, split: str | None = None, *, tags: Any = None, max_steps: int | None = None,
              resume_after: bool | None = None, eval_fn: str | None = None, include_discarded: bool = False,
              batch_size: int | None = None, model: str | None = None) -> dict[str, Any]:
        """Same signature as ``EvaluationController.start``."""
        if split == "nope":
            raise ValueError(f"split={split!r}: no such evaluation loader")
        self.state = "running"
        return {"state": "running", "split": split or "test", "progress": 0.0}

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "progress": 0.5, "metrics": {"accuracy": 0.75, "nan": float("nan")}}

    def cancel(self) -> dict[str, Any]:
        self.state = "cancelled"
        return {"state": "cancelled", "progress": 0.5}


class FakeCheckpoints:
    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.items: list[dict[str, Any]] = []

    def list(self, branch: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.items if branch is None or c["branch"] == branch]

    def save(self, reason: str = "manual", note: str | None = None, *,
             lock_timeout: float | None = None) -> dict[str, Any]:
        """Same signature and entry keys as ``CheckpointManager.save``."""
        item = {"id": f"ckpt-{len(self.items)}", "step": self.experiment.step, "branch": self.experiment.branch,
                "time": time.time(), "note": note or "", "reason": reason}
        self.items.append(item)
        return item

    def restore(self, step: int | None = None, branch: str | None = None, checkpoint_id: str | None = None, *,
                force: bool = False, restore_hyperparameters: bool = True, lock_timeout: float | None = None,
                reason: str = "restore") -> dict[str, Any]:
        """Same signature as ``CheckpointManager.restore``."""
        for item in self.items:
            if item["id"] == checkpoint_id or (step is not None and item["step"] == step):
                return item
        raise KeyError(f"checkpoint_id={checkpoint_id!r}: no such checkpoint")


def make_pm(test_plugin: HooksForTests | None = None) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("weightslab")
    pm.add_hookspecs(hookspecs)
    pm.register(_builtin, name="core")
    pm.register(auth_plugin, name="auth")
    pm.register(grpc_plugin, name="grpc_server")
    pm.register(test_plugin or HooksForTests(), name="grpc-tests")
    return pm


def populate(experiment: Experiment, n_train: int = 100, n_test: int = 20, steps: int = 5) -> None:
    """Samples in two splits, a per-sample loss over a few steps, tags and a category."""
    rng = np.random.default_rng(0)
    train_ids = [str(i) for i in range(n_train)]
    test_ids = [f"t{i}" for i in range(n_test)]
    experiment.register_samples("train", train_ids, np.arange(n_train) % 10)
    experiment.register_samples("test", test_ids, np.arange(n_test) % 10)
    for _ in range(steps):
        experiment.record("loss", rng.random(n_train), train_ids, split="train",
                          preds=rng.integers(0, 10, n_train), targets=np.arange(n_train) % 10, is_loss=True)
        experiment.record("loss", rng.random(n_test), test_ids, split="test")
        experiment.step_end()
    experiment.edit("tag", ids=[str(i) for i in range(10)], tag="hard")
    experiment.edit("set_category", ids=[str(i) for i in range(5)], tag="quality", value="blurry")


class Env:
    """One experiment + server + authenticated client."""

    def __init__(self, tmp_path: Path, pki: PKIPaths, token: str, *, populate_data: bool = True,
                 hp: bool = True, start: bool = True, **env: Any) -> None:
        port = env.pop("port", 0)
        self.tmp_path = tmp_path
        self.pki = pki
        self.token = token
        self.plugin = HooksForTests()
        self.pm = make_pm(self.plugin)
        environ = {"GRPC_TLS_CERT_DIR": str(pki.directory), "GRPC_AUTH_TOKEN": token,
                   "WL_ENABLE_HP_SYNC": "0", "WEIGHTSLAB_LOG_LEVEL": "WARNING"}
        environ.update({k: str(v) for k, v in env.items()})
        self.experiment = Experiment(kwargs={"root_log_dir": tmp_path / "root", "grpc_host": "127.0.0.1",
                                             "grpc_port": port},
                                     environ=environ, pm=self.pm, name="grpc-test")
        self.experiment.start()
        if hp:
            self.hp = HyperParameters({"lr": 0.1, "optimizer": {"momentum": 0.9}, "batch_size": 32,
                                       "name": "run", "augment": True},
                                      yaml_path=tmp_path / "root" / "hyperparameters.yaml")
            self.experiment.register_hyperparameters(self.hp)
        if populate_data:
            populate(self.experiment)
        self.handle: GrpcServerHandle | None = None
        self.channels: list[grpc.Channel] = []
        if start:
            self.serve()

    def serve(self) -> GrpcServerHandle:
        self.experiment.serve_options["grpc"] = True
        handles = [h for h in self.pm.hook.weightslab_serve(experiment=self.experiment,
                                                            config=self.experiment.config) if h is not None]
        assert len(handles) == 1
        self.handle = handles[0]
        assert self.experiment.services["grpc"] is self.handle
        return self.handle

    @property
    def target(self) -> str:
        assert self.handle is not None
        return f"127.0.0.1:{self.handle.port}"

    def channel(self, *, token: str | None = "default", options: list[tuple[str, Any]] | None = None,
                cert: bool = True) -> grpc.Channel:
        tok = self.token if token == "default" else token
        ch = secure_channel(self.target, ca=self.pki.ca_cert,
                            cert=self.pki.envoy_client_cert if cert else None,
                            key=self.pki.envoy_client_key if cert else None, token=tok,
                            options=[("grpc.enable_http_proxy", 0), *(options or [])])
        self.channels.append(ch)
        return ch

    def stub(self, **kwargs: Any) -> pb_grpc.ExperimentServiceStub:
        return pb_grpc.ExperimentServiceStub(self.channel(**kwargs))

    def close(self) -> None:
        for ch in self.channels:
            ch.close()
        if self.handle is not None:
            self.handle.stop(grace=0)
        self.experiment.shutdown()


def hold_lock(lock: Any) -> tuple[threading.Event, threading.Thread]:
    """Hold ``lock`` in another thread until the returned event is set."""
    release = threading.Event()
    held = threading.Event()

    def run() -> None:
        with lock:
            held.set()
            release.wait(30)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert held.wait(5)
    return release, thread


def rpc_error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> grpc.RpcError:
    kwargs.setdefault("timeout", TIMEOUT)
    with pytest.raises(grpc.RpcError) as err:
        result = fn(*args, **kwargs)
        if hasattr(result, "__iter__") and not isinstance(result, (bytes, str)) and not hasattr(result, "ByteSize"):
            list(result)
    return err.value


__all__ = ["TIMEOUT", "Env", "FakeCheckpoints", "FakeEvaluation", "hold_lock", "pb", "pb_grpc", "rpc_error"]
