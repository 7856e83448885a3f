"""Embeddings (opt-in, weightslab.embeddings) persist in the HDF5 store and come back after a restart."""

from __future__ import annotations

import numpy as np
import pytest
from weightslab.embeddings import cross_split_pairs, enable
from weightslab.experiment import Experiment
from weightslab.plugins import create_plugin_manager

torch = pytest.importorskip("torch")

ENV = {"WEIGHTSLAB_DISABLED_PLUGINS": "grpc_server,cli,watchdog,auth,agent,studio", "WEIGHTSLAB_LOG_LEVEL": "WARNING"}


def _experiment(root) -> Experiment:
    exp = Experiment(kwargs={"root_log_dir": root}, environ=ENV, pm=create_plugin_manager(ENV))
    exp.start()
    return exp


def test_embeddings_and_scores_survive_a_restart(tmp_path):
    rng = np.random.default_rng(0)
    exp = _experiment(tmp_path)
    assert type(exp.store).__name__ == "H5SampleStore"
    model = torch.nn.Sequential(torch.nn.Linear(8, 2))
    index = enable(exp, model, True)
    train = exp.register_samples("train", [str(i) for i in range(30)])
    val = exp.register_samples("val", [str(i) for i in range(10)])
    emb = rng.normal(size=(40, 8)).astype(np.float32)
    emb[35] = emb[3] + 1e-3  # val/5 copies train/3
    for rows in (train[:20], train[20:], val):  # the hook's path: a loader batch, then the forward
        exp._local.batch = rows
        model(torch.from_numpy(emb[rows]))
    assert index.refresh(wait=True, timeout=30)
    pairs = {frozenset(p) for p in cross_split_pairs(index)}
    assert frozenset({("train", "3"), ("val", "5")}) in pairs
    before = exp.frame()
    exp.shutdown()

    again = _experiment(tmp_path)
    model2 = torch.nn.Sequential(torch.nn.Linear(8, 2))
    index2 = enable(again, model2, True)
    rows, values = index2.matrix()
    assert len(rows) == 40
    keys = [(again.table.split[r], again.table.sample_id[r]) for r in rows]
    order = [int(k[1]) + (30 if k[0] == "val" else 0) for k in keys]
    np.testing.assert_allclose(values, emb[order], rtol=1e-6)
    assert index2.refresh(wait=True, timeout=30)
    frame = again.frame()
    assert list(frame.sample_id) == list(before.sample_id)
    np.testing.assert_allclose(frame.columns["outlier_score"], before.columns["outlier_score"], rtol=1e-5)
    assert again.status()["data_quality"]["leakage"]["pairs"] >= 1
    again.shutdown()
