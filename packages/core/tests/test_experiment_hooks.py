"""The experiment fires the lifecycle hooks plugins rely on, through the real plugin manager."""

from __future__ import annotations

import numpy as np
from weightslab.experiment import Experiment
from weightslab.hookspecs import hookimpl
from weightslab.plugins import create_plugin_manager
from weightslab.store import MemorySampleStore


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.store = _CountingStore()

    @hookimpl
    def weightslab_experiment_started(self, experiment):
        self.calls.append(("started", experiment.name))

    @hookimpl
    def weightslab_step_end(self, step):  # any subset of the documented arguments
        self.calls.append(("step_end", step))

    @hookimpl
    def weightslab_shutdown(self, experiment):
        self.calls.append(("shutdown", experiment.step))

    @hookimpl(tryfirst=True)
    def weightslab_sample_store(self, experiment, config):
        return self.store


class _CountingStore(MemorySampleStore):
    persistent = True

    def __init__(self) -> None:
        self.history: list[tuple[str, int]] = []
        self.rows = 0
        self.flushed = 0

    def append_history(self, signal, split, sample_ids, steps, values, branch):
        self.history.append((signal, len(sample_ids)))

    def update_rows(self, rows):
        self.rows += len(rows.sample_id)

    def flush(self):
        self.flushed += 1


def _experiment(tmp_path, plugin) -> Experiment:
    environ = {"WEIGHTSLAB_DISABLED_PLUGINS": "data_cache,grpc_server,cli,watchdog,auth,agent,studio"}
    pm = create_plugin_manager(environ)
    pm.register(plugin, name="test-recorder")
    return Experiment(kwargs={"root_log_dir": tmp_path}, environ=environ, pm=pm)


def test_lifecycle_hooks_and_store(tmp_path):
    plugin = Recorder()
    exp = _experiment(tmp_path, plugin)
    exp.start()
    assert exp.store is plugin.store
    rows = exp.register_samples("train", ["a", "b", "c"], np.array([0, 1, 2]))
    assert plugin.store.rows == 3
    exp.record("loss", np.array([0.1, 0.2, 0.3]), ["a", "b", "c"], split="train")
    exp.step_end()
    exp.step_end()
    exp.edit("discard", ids=["b"])
    assert plugin.store.rows == 4  # the changed row is persisted
    exp.shutdown()
    assert plugin.calls == [("started", exp.name), ("step_end", 1), ("step_end", 2), ("shutdown", 2)]
    assert plugin.store.history == [("loss", 3)]
    assert plugin.store.flushed >= 1
    assert list(rows) == [0, 1, 2]


def test_in_memory_store_is_the_default(tmp_path):
    environ = {"WEIGHTSLAB_DISABLED_PLUGINS": "data_cache"}
    exp = Experiment(kwargs={"root_log_dir": tmp_path}, environ=environ, pm=create_plugin_manager(environ))
    exp.start()
    assert type(exp.store) is MemorySampleStore
    exp.shutdown()


def test_branch_changes_when_resuming_after_an_edit(tmp_path):
    exp = _experiment(tmp_path, Recorder())
    exp.start()
    exp.register_samples("train", ["a", "b"])
    first = exp.branch
    exp.control.pause()
    exp.control.resume()
    assert exp.branch == first  # nothing edited: same branch
    exp.control.pause()
    exp.edit("discard", ids=["a"])
    exp.control.resume()
    assert exp.branch != first
    exp.shutdown()


def test_the_counting_store_implements_the_store_protocol():
    from weightslab.contracts import conformance
    from weightslab.store import SampleStore

    assert conformance(_CountingStore(), SampleStore) == []
