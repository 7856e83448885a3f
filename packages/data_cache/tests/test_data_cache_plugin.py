"""Hooks: sample store from config, previews, shutdown."""

from __future__ import annotations

import io
import types
from pathlib import Path

import numpy as np
from PIL import Image
from weightslab.plugins import get_plugin_manager
from weightslab.settings import load_config
from weightslab_data_cache import plugin
from weightslab_data_cache.h5store import H5SampleStore


def _config(tmp_path: Path, **environ: str):  # noqa: ANN202
    return load_config(environ=environ, cwd=tmp_path, validate=False)


def test_plugin_is_registered_with_its_settings() -> None:
    pm = get_plugin_manager()
    assert any(getattr(p, "__name__", "") == "weightslab_data_cache.plugin" for p in pm.get_plugins())
    assert "data_cache" in [s.section for s in plugin.weightslab_config_sections()]


def test_sample_store_hook_uses_the_config(tmp_path: Path) -> None:
    config = _config(tmp_path, WEIGHTSLAB_SAVE_PREDICTIONS_IN_H5="0", WL_BATCH_CHUNK_SIZE="7")
    experiment = types.SimpleNamespace(root_log_dir=tmp_path / "run")
    store = plugin.weightslab_sample_store(experiment=experiment, config=config)
    try:
        assert isinstance(store, H5SampleStore)
        assert store.path == tmp_path / "run" / "store"
        assert store.chunk_size == 7 and store.save_predictions is False
        store.append_predictions("train", np.arange(2), 0, np.zeros(2))
        store.append_curve("loss", "train", "b", 0, 1.0)
        experiment.store = store
        plugin.weightslab_shutdown(experiment=experiment)  # flushes and closes
    finally:
        store.close()
    with H5SampleStore(tmp_path / "run" / "store") as reopened:
        state = reopened.load()
    assert state.predictions == {} and state.curves[("loss", "train", "b")].value.tolist() == [1.0]


def test_sample_store_through_the_plugin_manager(tmp_path: Path) -> None:
    pm = get_plugin_manager()
    experiment = types.SimpleNamespace(root_log_dir=tmp_path)
    store = pm.hook.weightslab_sample_store(experiment=experiment, config=_config(tmp_path))
    try:
        assert isinstance(store, H5SampleStore) and store.save_predictions is True
    finally:
        store.close()


def test_a_new_experiment_on_the_same_folder_takes_over(tmp_path: Path) -> None:
    config = _config(tmp_path)
    experiment = types.SimpleNamespace(root_log_dir=tmp_path)
    first = plugin.weightslab_sample_store(experiment=experiment, config=config)
    first.append_curve("loss", "train", "b", 0, 1.0)
    second = plugin.weightslab_sample_store(experiment=experiment, config=config)
    try:
        assert second.load().curves[("loss", "train", "b")].value.tolist() == [1.0]  # first was flushed
    finally:
        second.close()


def test_preview_hook(tmp_path: Path) -> None:
    data, mime = plugin.weightslab_preview(sample=np.zeros((40, 80, 3), dtype=np.uint8), size=20, config=None)
    assert mime == "image/jpeg" and Image.open(io.BytesIO(data)).size == (20, 10)
    assert plugin.weightslab_preview(sample=object(), size=20, config=None) is None  # not ours: let others try
    plugin.weightslab_configure(config=_config(tmp_path, WL_DEFAULT_THUMBNAIL_SIZE="16"))
    try:
        data, _ = plugin.weightslab_preview(sample=np.zeros((40, 80), dtype=np.uint8), size=0, config=None)
        assert Image.open(io.BytesIO(data)).size == (16, 8)
    finally:
        plugin.weightslab_configure(config=_config(tmp_path))


def test_shutdown_without_a_store() -> None:
    plugin.weightslab_shutdown(experiment=types.SimpleNamespace())


def test_the_overview_waits_for_a_training_loop_that_is_starting(tmp_path) -> None:
    """Busy from the first training batch on, before any step has ended (a render then would
    compete with the loop's first steps), and once steps are made; not before the loop starts,
    nor when a first step has run for longer than 5 s; busy for a moment after a query of an idle
    run (a person using the API), not after a status poll."""
    import time

    import torch
    from weightslab.data import WatchedLoader
    from weightslab.experiment import Experiment
    from weightslab_data_cache.plugin import _stepping

    exp = Experiment(kwargs={"root_log_dir": tmp_path / "root"},
                     environ={"WEIGHTSLAB_DISABLED_PLUGINS": "grpc_server,cli,watchdog,auth,agent,studio,example",
                              "WEIGHTSLAB_LOG_LEVEL": "WARNING"})
    loader = WatchedLoader(exp, torch.utils.data.TensorDataset(torch.zeros(8, 1), torch.zeros(8)), batch_size=4)
    evaluation = WatchedLoader(exp, torch.utils.data.TensorDataset(torch.zeros(8, 1), torch.zeros(8)),
                               loader_name="val", batch_size=4)
    assert not _stepping(exp)
    assert _stepping(exp, served=time.monotonic())  # just served: a training loop usually follows
    assert not _stepping(exp, served=time.monotonic() - 3.0)  # none came
    next(iter(evaluation))
    assert not _stepping(exp)  # an evaluation loader is not the training loop
    batches = iter(loader)
    next(batches)
    assert _stepping(exp)
    exp._first_batch = time.monotonic() - 6.0  # a first step running for 6 s
    assert not _stepping(exp)
    exp.step_end()
    assert _stepping(exp)
    exp._last_step_end = time.monotonic() - 60.0  # the loop went idle
    assert not _stepping(exp)
    exp.frame()  # a person queries: the overview gives way for a moment
    assert _stepping(exp)
    exp._last_read = time.monotonic() - 0.3
    assert not _stepping(exp)
    exp.status()  # a Studio polls status all the time: not a reason to wait
    assert not _stepping(exp)
    from weightslab.operations.samples import QuerySamplesRequest, query_samples

    query_samples(exp, QuerySamplesRequest(query="limit 1"))
    exp._last_read = time.monotonic() - 0.3
    query_samples(exp, QuerySamplesRequest(query="limit 1"))  # answered from the cached frame
    assert _stepping(exp)
