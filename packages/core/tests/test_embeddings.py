"""Opt-in embeddings from a real torch training run, and the outlier / near-duplicate columns.

scikit-learn digits with injected problems: 3% corrupted inputs (uniform noise, blank, inverted)
and 2% near-duplicates (copies with small noise), some of them across the train/val split.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from core_testutil import injected_digits, lenet  # noqa: E402


def _train(wl, embeddings, epochs=2):
    torch.set_num_threads(1)
    train, val = injected_digits()
    model = wl.watch_or_edit(lenet(), flag="model", embeddings=embeddings)
    opt = wl.watch_or_edit(torch.optim.Adam(model.parameters(), lr=1e-2), flag="optimizer")
    loaders = {}
    for split, part in (("train", train), ("val", val)):
        ds = torch.utils.data.TensorDataset(torch.from_numpy(part[0]), torch.from_numpy(part[1]))
        loaders[split] = wl.watch_or_edit(ds, flag="data", loader_name=split, batch_size=64,
                                          shuffle=split == "train", is_training=split == "train")
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="loss")
    for _ in range(epochs):
        for x, ids, y in loaders["train"]:
            opt.zero_grad()
            loss_fn(model(x), y, batch_ids=ids).mean().backward()
            opt.step()
        with wl.guard_testing_context, torch.no_grad():
            for x, ids, y in loaders["val"]:
                loss_fn(model(x), y, batch_ids=ids)
    exp = wl.get_experiment()
    assert exp.embeddings.refresh(wait=True, timeout=60)
    return exp, train, val


def _truth(frame, train, val):
    parts = {"train": train, "val": val}
    corrupted = np.array([parts[s][2][int(i)] for s, i in zip(frame.split, frame.sample_id, strict=True)])
    pairs = set()
    for split, part in parts.items():
        for i, src in enumerate(part[3]):
            if src is not None:
                pairs.add(frozenset({(split, str(i)), (src[0], str(src[1]))}))
    return corrupted, pairs


def test_outliers_and_near_duplicates_on_injected_digits(wl):
    from sklearn.metrics import roc_auc_score
    from weightslab.embeddings import cross_split_pairs
    from weightslab.operations import status
    from weightslab.query.engine import run_query

    exp, train, val = _train(wl, embeddings="0")  # the first layer's input: the image itself
    frame = exp.frame()
    corrupted, truth = _truth(frame, train, val)
    assert len(frame.sample_id) == len(train[0]) + len(val[0])
    score = frame.columns["outlier_score"]
    assert np.isfinite(score).all()
    for split in ("train", "val"):
        m = frame.split == split
        assert roc_auc_score(corrupted[m], score[m]) >= 0.95, split

    # near-duplicates: predicted pairs (row -> its nearest near-duplicate) vs injected copies;
    # blank images are exact copies of each other, so pairs of two corrupted inputs are not errors
    keys = list(zip(frame.split.tolist(), frame.sample_id.tolist(), strict=True))
    near_of, near_split = frame.columns["near_duplicate_of"], frame.columns["near_duplicate_split"]
    predicted = {frozenset({keys[r], (near_split[r], near_of[r])}) for r in range(len(keys)) if near_of[r] is not None}
    bad = {k for k, c in zip(keys, corrupted, strict=True) if c}
    predicted = {p for p in predicted if not p <= bad}
    hits = len(predicted & truth)
    assert hits / len(truth) >= 0.9, (hits, len(truth))
    assert hits / len(predicted) >= 0.9, (hits, len(predicted))

    # every injected cross-split pair is reported as leakage (status and the full list)
    cross_truth = {p for p in truth if len({s for s, _ in p}) == 2}
    assert len(cross_truth) >= 10
    reported = {frozenset(p) for p in cross_split_pairs(exp.embeddings)}
    assert cross_truth <= reported
    quality = status.get_status(exp).data_quality
    assert quality["state"] == "ready" and quality["exact"] is True
    assert quality["leakage"]["pairs"] == len(reported)
    assert quality["embedded"] == len(keys) and quality["dim"] == 64

    # the columns work with the query syntax
    top = run_query(frame, "outlier_score > 2 sort by outlier_score desc limit 1000")
    values = score[top.indices].tolist()
    assert values == sorted(values, reverse=True) and all(v > 2 for v in values) and top.total >= 40
    has = run_query(frame, "has near_duplicate_of limit 1000")
    assert has.total == sum(v is not None for v in near_of)
    hasnt = run_query(frame, "not has near_duplicate_of")
    assert hasnt.total + has.total == len(keys)
    groups = frame.columns["duplicate_group"]
    assert np.isfinite(groups[has.indices]).all()
    uniq = frame.columns["uniqueness"]
    assert np.nanmin(uniq) >= 0 and np.nanmax(uniq) <= 1
    assert np.nanmean(uniq[has.indices]) < 0.2  # a copy is not unique


def test_default_module_is_the_last_layers_input(wl):
    exp, train, val = _train(wl, embeddings=True, epochs=1)
    index = exp.embeddings
    assert index.module_name == "6" and index.dim == 64  # Linear(64, 10) gets 64 values: no projection
    frame = exp.frame()
    assert np.isfinite(frame.columns["outlier_score"]).all()
    rows, values = index.matrix()
    assert len(rows) == len(train[0]) + len(val[0]) and values.dtype == np.float32


def test_wide_inputs_are_projected_to_64_dims(wl):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = wl.watch_or_edit(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(300, 4)), flag="model",
                             embeddings="1")
    ds = torch.utils.data.TensorDataset(torch.randn(40, 3, 10, 10), torch.zeros(40, dtype=torch.long))
    loader = wl.watch_or_edit(ds, flag="data", loader_name="train", batch_size=8)
    for x, _ids, _y in loader:
        model(x)
        model(x[:3])  # another call of the model in the same step is not attributed to the batch
    rows, values = wl.get_experiment().embeddings.matrix()
    assert values.shape == (40, 64) and sorted(rows.tolist()) == list(range(40))
    # distances are roughly preserved (Johnson-Lindenstrauss): relative error well under 50%
    flat = ds.tensors[0].reshape(40, -1).numpy()
    d_in = np.linalg.norm(flat[0] - flat[1:], axis=1)
    d_out = np.linalg.norm(values[rows == 0][0] - values[[list(rows).index(i) for i in range(1, 40)]], axis=1)
    assert np.median(np.abs(d_out / d_in - 1)) < 0.3


def test_bad_embeddings_argument_names_the_modules(wl):
    with pytest.raises(ValueError, match=r"embeddings='nope'.*known: '0', '1'"):
        wl.watch_or_edit(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()), flag="model",
                         embeddings="nope")
    with pytest.raises(ValueError, match="embeddings=3"):
        wl.watch_or_edit(torch.nn.Linear(2, 2), flag="model", embeddings=3)
    assert wl.get_experiment().status()["data_quality"] is None  # nothing attached


def test_a_failing_capture_never_breaks_the_forward_pass(wl, monkeypatch, caplog):
    import weightslab.embeddings as embeddings

    def broken(value):
        raise RuntimeError("copy failed")

    torch.set_num_threads(1)
    model = wl.watch_or_edit(torch.nn.Sequential(torch.nn.Linear(4, 2)), flag="model", embeddings=True)
    ds = torch.utils.data.TensorDataset(torch.randn(8, 4), torch.zeros(8, dtype=torch.long))
    loader = wl.watch_or_edit(ds, flag="data", loader_name="train", batch_size=4)
    monkeypatch.setattr(embeddings, "to_host_async", broken)
    logger = logging.getLogger("weightslab")
    logger.addHandler(caplog.handler)  # the weightslab hierarchy does not propagate to the root
    try:
        for x, _ids, _y in loader:
            assert model(x).shape == (4, 2)
    finally:
        logger.removeHandler(caplog.handler)
    assert len(wl.get_experiment().embeddings.embedded_rows()) == 0
    assert "capturing embeddings of module '0' failed (copy failed)" in caplog.text


def test_scores_refresh_by_themselves_after_an_epoch_of_captures(wl):
    from core_testutil import wait_for

    torch.set_num_threads(1)
    model = wl.watch_or_edit(torch.nn.Sequential(torch.nn.Linear(5, 3)), flag="model", embeddings=True)
    ds = torch.utils.data.TensorDataset(torch.randn(96, 5), torch.zeros(96, dtype=torch.long))
    loader = wl.watch_or_edit(ds, flag="data", loader_name="train", batch_size=16)
    index = wl.get_experiment().embeddings
    assert wl.get_experiment().status()["data_quality"]["state"] == "waiting"
    for _ in range(2):
        for x, _ids, _y in loader:
            model(x)
    wait_for(lambda: index.status()["state"] == "ready" and index.status()["rows"] == 96, timeout=30)
    df = wl.dataframe()
    assert df["outlier_score"].notna().all() and "near_duplicate_of" in df.columns
