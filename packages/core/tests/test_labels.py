"""Label corrections and suggested labels on scikit-learn digits with injected label noise,
real torch CPU training through the SDK (watched loader, watched loss)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from core_testutil import noisy_digits

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

EPOCHS = 30
ACT_EPOCH = 6


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic and fair on a shared machine
    yield
    torch.set_num_threads(threads)


def _digits():
    from sklearn.model_selection import train_test_split

    x, y, y_noisy, noisy = noisy_digits(noise=0.1, seed=0)
    tr, va = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=y)
    return x[tr], y[tr], y_noisy[tr], noisy[tr], x[va], y[va]


def _net(hidden: int = 256):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))


def _train(wl, data, *, epochs: int, act_epoch: int | None = None, k: int = 0):
    """Train on the noisy labels; at ``act_epoch`` relabel the top-k suspects to their suggestion.
    Returns the validation accuracy (clean labels) after each epoch."""
    xtr, _, yntr, _, xva, yva = data
    model = wl.watch_or_edit(_net(), flag="model")
    opt = wl.watch_or_edit(torch.optim.Adam(model.parameters(), lr=3e-3), flag="optimizer")
    loader = wl.watch_or_edit((xtr, yntr), flag="data", loader_name="train", batch_size=64, shuffle=True, seed=0)
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="train_loss")
    accuracy = []
    corrected: dict[int, int] = {}
    for epoch in range(epochs):
        if act_epoch is not None and epoch == act_epoch:
            result = wl.relabel_to_suggestion(query=f"top {k} by suspected_mislabel")
            assert result["matched"] == k and result["changed"] > 0.8 * k
            table = wl.get_experiment().table
            rows = table.find(result["sample_ids"], "train")
            corrected = {int(s): int(v) for s, v in zip(table.sample_id[rows], table.numeric["label"][rows],
                                                        strict=True)}
        for inputs, ids, labels in loader:
            if corrected:  # the very next batch already carries the new labels
                got = {int(i): int(v) for i, v in zip(ids, labels, strict=True) if int(i) in corrected}
                assert got and got == {i: corrected[i] for i in got}
                corrected = {}
            loss = loss_fn(model(torch.as_tensor(inputs)), torch.as_tensor(labels), batch_ids=ids)
            opt.zero_grad()
            loss.mean().backward()
            opt.step()
        with torch.no_grad():
            accuracy.append(float((model(torch.as_tensor(xva)).argmax(1).numpy() == yva).mean()))
    return accuracy


def _columns(wl, split: str = "train"):
    df = wl.dataframe()
    df = df[df.split == split]
    return df.sample_id.astype(int).to_numpy(), df


def test_suggested_label_finds_true_labels_and_relabelling_raises_clean_accuracy(wl, tmp_path, monkeypatch):
    data = _digits()
    _, ytr, yntr, noisy, _, _ = data
    k = int(noisy.sum())

    baseline = _train(wl, data, epochs=EPOCHS)
    sid, df = _columns(wl)
    suggested = df.suggested_label.to_numpy()
    hit = float((suggested[noisy[sid]] == ytr[sid][noisy[sid]]).mean())
    print(f"\nsuggested_label == true label for {hit:.3f} of {k} injected mislabels")
    assert hit >= 0.9
    confidence = df.suggested_label_confidence.to_numpy()
    assert np.all((confidence >= 0) & (confidence <= 1))
    # suggestion_differs marks the noisy rows (and few clean ones)
    differs = df.suggestion_differs.to_numpy() == 1
    assert differs[noisy[sid]].mean() >= 0.9 and differs[~noisy[sid]].mean() <= 0.05

    # The columns are queryable with the existing syntax.
    from weightslab.operations.samples import QuerySamplesRequest, query_samples
    from weightslab.sdk import get_experiment

    page = query_samples(get_experiment(), QuerySamplesRequest(
        query="suggestion_differs == 1 and suggested_label_confidence > 0.5 sort by suggested_label_confidence desc",
        columns=("label", "suggested_label", "suggested_label_confidence")))
    assert page.total > 0.8 * k
    conf = [r["suggested_label_confidence"] for r in page.records()]
    assert conf == sorted(conf, reverse=True)

    # Same seed, but the top-k suspects get their suggested label early in training.
    from weightslab.sdk import reset_experiment

    reset_experiment()
    monkeypatch.setenv("WEIGHTSLAB_ROOT_LOG_DIR", str(tmp_path / "acted"))
    acted = _train(wl, data, epochs=EPOCHS, act_epoch=ACT_EPOCH, k=k)
    assert acted[:ACT_EPOCH] == baseline[:ACT_EPOCH]  # same run until the correction
    sid, df = _columns(wl)
    label = df.label.to_numpy()
    fixed = (label == ytr[sid]) & noisy[sid]
    print(f"corrected {int(fixed.sum())} of {k} mislabels; clean val accuracy, mean of the last 5 epochs: "
          f"{np.mean(baseline[-5:]):.4f} without acting, {np.mean(acted[-5:]):.4f} with")
    assert fixed.sum() >= 0.8 * k
    assert np.mean(acted[-5:]) > np.mean(baseline[-5:])
    assert np.isfinite(df.original_label.to_numpy()).sum() == df.original_label.notna().sum() > 0.8 * k


def _small(wl, n: int = 96, *, tensor: bool = False, batch_size: int = 16, shuffle: bool = False):
    x, y, _, _ = noisy_digits(n=n, noise=0.0)
    data = torch.utils.data.TensorDataset(torch.as_tensor(x), torch.as_tensor(y)) if tensor else (x, y)
    loader = wl.watch_or_edit(data, flag="data", loader_name="train", batch_size=batch_size, shuffle=shuffle,
                              preload_labels=tensor)  # a TensorDataset has no .targets
    return x, y, loader


@pytest.mark.parametrize("tensor", [False, True], ids=["numpy", "torch"])
def test_loader_yields_the_corrected_label_from_the_next_batch(wl, tensor):
    _, y, loader = _small(wl, tensor=tensor)
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="train_loss")
    model = _net(32)
    batches = iter(loader)
    inputs, ids, labels = next(batches)
    loss_fn(model(torch.as_tensor(inputs)), torch.as_tensor(labels), batch_ids=ids)
    # samples 16..19 are in the next batch (no shuffle): correct them now
    new = {str(i): (int(y[i]) + 1) % 10 for i in range(16, 20)}
    for sid, label in new.items():
        assert wl.relabel([sid], label)["changed"] == 1
    inputs, ids, labels = next(batches)
    got = {str(int(i)): int(v) for i, v in zip(np.asarray(ids), np.asarray(labels), strict=True)}
    assert {sid: got[sid] for sid in new} == new
    assert all(got[s] == int(y[int(s)]) for s in got if s not in new)
    if tensor:
        assert torch.is_tensor(labels) and labels.dtype == torch.int64
    loss_fn(model(torch.as_tensor(inputs)), torch.as_tensor(labels), batch_ids=ids)
    df = wl.dataframe().set_index("sample_id")
    assert int(df.loc["16", "label"]) == new["16"] and int(df.loc["16", "original_label"]) == int(y[16])
    assert np.isnan(df.loc["0", "original_label"])
    # a later epoch yields the correction again (the dataset itself is untouched)
    seen = {str(int(i)): int(v) for _, i_, v_ in iter(loader) for i, v in zip(np.asarray(i_), np.asarray(v_),
                                                                                strict=True)}
    assert {sid: seen[sid] for sid in new} == new


def test_relabel_revert_audit_hash_and_export(wl, tmp_path):
    _, y, _ = _small(wl)
    from weightslab.sdk import get_experiment

    exp = get_experiment()
    before = exp.compute_hash()
    result = wl.relabel(query="sample_id in ('3', '5')", label=7)
    assert (result["matched"], result["changed"]) == (2, 2 - int(y[3] == 7) - int(y[5] == 7))
    assert wl.relabel(["3", "5"], 7)["changed"] == 0  # idempotent
    edited = exp.compute_hash()
    assert edited != before
    df = wl.dataframe().set_index("sample_id")
    assert int(df.loc["3", "label"]) == 7 and int(df.loc["3", "original_label"]) == int(y[3])

    csv_path = wl.export_labels(tmp_path / "out" / "labels.csv")
    rows = list(csv.DictReader(csv_path.open()))
    assert [(r["id"], r["split"], r["original"], r["corrected"]) for r in rows] == [
        (s, "train", str(int(y[int(s)])), "7") for s in ("3", "5") if int(y[int(s)]) != 7]
    assert all(r["by"] == "sdk" and r["at"].endswith("+00:00") for r in rows)
    js = json.loads(wl.export_labels(tmp_path / "labels.json").read_text())
    assert [r["id"] for r in js] == [r["id"] for r in rows] and isinstance(js[0]["original"], int)

    assert wl.revert_labels(["3"])["changed"] == 1
    assert wl.relabel(["5"], int(y[5]))["changed"] == 1  # back to the original: no correction left
    df = wl.dataframe().set_index("sample_id")
    assert int(df.loc["3", "label"]) == int(y[3]) and df.original_label.isna().all()
    assert exp.compute_hash() == before
    assert json.loads(wl.export_labels(tmp_path / "empty.json").read_text()) == []

    audit = [json.loads(line) for line in (exp.root_log_dir / "audit.jsonl").read_text().splitlines()]
    relabels = [a for a in audit if a.get("action") == "relabel_samples"]
    assert [a["params"]["action"] for a in relabels] == ["relabel", "relabel", "revert_label", "relabel"]
    assert relabels[0]["params"]["label"] == 7 and relabels[0]["outcome"] == "ok"


def test_relabel_to_suggestion_only_changes_rows_with_a_suggestion(wl):
    x, y, loader = _small(wl, n=32)
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="train_loss")
    inputs, ids, labels = next(iter(loader))  # rows 0..15 observed once
    logits = torch.full((16, 10), -5.0)
    logits[:, 2] = 5.0  # the "model" believes class 2 for every sample
    loss_fn(logits, torch.as_tensor(labels), batch_ids=ids)
    result = wl.relabel_to_suggestion(query='split == "train"')
    assert result["matched"] == 32 and result["without_suggestion"] == 16
    assert result["changed"] == int((y[:16] != 2).sum())
    df = wl.dataframe().set_index("sample_id")
    assert (df.loc[[str(i) for i in range(16)], "label"] == 2).all()
    assert (df.loc[[str(i) for i in range(16, 32)], "label"].to_numpy() == y[16:32]).all()
    assert df.loc["0", "suggested_label_confidence"] > 0.99


def test_bad_input_gives_clear_errors(wl):
    from weightslab.operations import InvalidRequest
    from weightslab.table import UnknownSamples

    _, y, loader = _small(wl, n=32)
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="train_loss")
    inputs, ids, labels = next(iter(loader))
    loss_fn(_net(8)(torch.as_tensor(inputs)), torch.as_tensor(labels), batch_ids=ids)  # 10 classes known
    with pytest.raises(UnknownSamples, match="unknown sample ids.*nope"):
        wl.relabel(["nope"], 1)
    for bad in ("cat", 1.5, True, None, -1):
        with pytest.raises(InvalidRequest, match=r"label=.*expected a class index"):
            wl.relabel(["1"], bad)
    with pytest.raises(InvalidRequest, match=r"label=10: out of range: the model has 10 classes \(expected 0..9\)"):
        wl.relabel(["1"], 10)
    with pytest.raises(InvalidRequest, match="target: give ids or query"):
        wl.relabel(label=1)
    with pytest.raises(InvalidRequest, match="query: empty"):
        wl.relabel(query="", label=1)
    with pytest.raises(ValueError, match="label= or suggested=True"):
        wl.relabel(["1"], 1, suggested=True)
    x, y, _, _ = noisy_digits(n=8, noise=0.0)
    wl.watch_or_edit((x, y), flag="data", loader_name="val", batch_size=4)  # ids 0..7 in train and val
    with pytest.raises(InvalidRequest, match="sample id '1' exists in several splits"):
        wl.relabel(["1"], 2)
    assert wl.relabel(["val:1"], 2)["changed"] == int(y[1] != 2)
    wl.revert_labels(["1"], split="val")
    unlabelled = torch.utils.data.TensorDataset(torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64))
    wl.watch_or_edit(unlabelled, flag="data", loader_name="nolabels", batch_size=2)
    with pytest.raises(ValueError, match="has no class label recorded yet.*preload_labels=True"):
        wl.relabel(["1"], 1, split="nolabels")
    from weightslab.sdk import get_experiment

    assert len(get_experiment().label_edits) == 0 and wl.dataframe().original_label.isna().all()


def test_non_class_targets_are_refused(wl):
    from weightslab.labels import UnsupportedTarget

    x = np.zeros((8, 3), np.float32)
    wl.watch_or_edit((x, np.linspace(0.1, 0.8, 8)), flag="data", loader_name="reg", batch_size=4)
    with pytest.raises(UnsupportedTarget, match="not supported for this target type.*regression"):
        wl.relabel(["1"], 2, split="reg")
    masks = [np.zeros((2, 2), np.int64) for _ in range(4)]

    class Masks:
        targets = masks

        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int):
            return np.zeros(3, np.float32), masks[i]

    wl.watch_or_edit(Masks(), flag="data", loader_name="seg", batch_size=2)
    with pytest.raises(UnsupportedTarget, match="not supported for this target type.*arrays"):
        wl.relabel(["0"], 1, split="seg")


def test_corrections_survive_a_restart(tmp_path, monkeypatch):
    pytest.importorskip("weightslab_data_cache")
    import weightslab as wl
    from weightslab.sdk import get_experiment, reset_experiment

    root = tmp_path / "root"
    monkeypatch.setenv("WEIGHTSLAB_ROOT_LOG_DIR", str(root))
    x, y, _, _ = noisy_digits(n=40, noise=0.0)
    reset_experiment()
    try:
        wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=8)
        assert getattr(get_experiment().store, "persistent", False), "expected the HDF5 store"
        wl.relabel(["4", "9"], 3)
        wl.relabel(["11"], 5)
        wl.revert_labels(["11"])
        branch = get_experiment().compute_hash()
        reset_experiment()  # flushes and closes the store

        loader = wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=8)
        exp = get_experiment()
        assert exp.compute_hash() == branch
        got = {str(int(i)): int(v) for _, ids, labels in loader for i, v in zip(ids, labels, strict=True)}
        assert got["4"] == got["9"] == 3 and got["11"] == int(y[11]) and got["0"] == int(y[0])
        df = wl.dataframe().set_index("sample_id")
        assert int(df.loc["4", "original_label"]) == int(y[4]) and np.isnan(df.loc["11", "original_label"])
        rows = json.loads(wl.export_labels(tmp_path / "l.json").read_text())
        assert [(r["id"], r["original"], r["corrected"], r["by"]) for r in rows] == [
            ("4", int(y[4]), 3, "sdk"), ("9", int(y[9]), 3, "sdk")]
    finally:
        reset_experiment()


def test_suggestion_tracker_weights_votes_and_limits(caplog):
    from weightslab.suggest import SuggestionTracker

    tracker = SuggestionTracker()
    rows = np.array([0, 1, 1])  # row 1 twice in one batch: both observations count
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7]]))
    tracker.update(rows, logits=logits, targets=np.array([0, 1, 2]))
    cols = tracker.columns(3, labels=np.array([0.0, 2.0, np.nan]))
    assert cols["suggested_label"][0] == 0 and cols["suggested_label_confidence"][0] == pytest.approx(0.7)
    assert cols["suggested_label_confidence"][1] == pytest.approx(0.5)  # (0.8 + 0.2) / 2 for class 1
    assert cols["suggestion_differs"].tolist()[:2] == [0.0, 1.0] and np.isnan(cols["suggested_label"][2])
    assert tracker.n_classes == 3
    assert tracker.suggestion(np.array([0, 1, 2, 99])).tolist() == [0, 1, -1, -1]
    # hard predictions are votes; they never set the number of classes
    votes = SuggestionTracker()
    votes.update(np.array([0, 0, 0]), preds=np.array([4, 4, 1]))
    assert votes.columns(1)["suggested_label"].tolist() == [4.0] and votes.n_classes == 0
    assert votes.columns(1)["suggested_label_confidence"][0] == pytest.approx(2 / 3)
    # a change of the logits' width or too many cells stops suggestions with one warning
    tracker.update(np.array([0]), logits=np.zeros((1, 5)))
    assert tracker.disabled and np.isnan(tracker.columns(2)["suggested_label"]).all()
    small = SuggestionTracker(max_cells=100)
    small.update(np.arange(40), logits=np.zeros((40, 10)))
    assert "exceed 100 cells" in small.disabled
    assert any("suggested_label is off" in r.message for r in caplog.records)


def test_a_checkpoint_restores_the_corrections_it_saw(wl):
    from weightslab.checkpoints import CheckpointManager

    _, y, loader = _small(wl, n=48)
    model = wl.watch_or_edit(_net(16), flag="model")
    opt = wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=0.01), flag="optimizer")
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="train_loss")
    for inputs, ids, labels in loader:
        with wl.guard_training_context:
            opt.zero_grad()
            loss_fn(model(torch.as_tensor(inputs)), torch.as_tensor(labels), batch_ids=ids).mean().backward()
            opt.step()
    exp = wl.get_experiment()
    manager = CheckpointManager(exp)
    wl.relabel(["1"], (int(y[1]) + 1) % 10)
    with_one = manager.save(note="one correction")
    wl.relabel(["2"], (int(y[2]) + 1) % 10)
    wl.revert_labels(["1"])
    wl.pause()
    manager.restore(checkpoint_id=with_one["id"])
    df = wl.dataframe().set_index("sample_id")
    assert int(df.loc["1", "label"]) == (int(y[1]) + 1) % 10 and int(df.loc["1", "original_label"]) == int(y[1])
    assert int(df.loc["2", "label"]) == int(y[2]) and np.isnan(df.loc["2", "original_label"])
    assert [(r.sample_id, r.corrected) for r in exp.label_edits.records(exp.table)] == [
        ("1", (int(y[1]) + 1) % 10)]
    wl.resume()  # a paused training loader would wait at its first batch
    got = {str(int(i)): int(v) for _, ids, labels in loader for i, v in zip(ids, labels, strict=True)}
    assert got["1"] == (int(y[1]) + 1) % 10 and got["2"] == int(y[2])
