"""Label corrections under careless and hostile input (SDK, real torch CPU, real loaders): labels
that are not class indices, classes beyond the dataset before the model's width is known, numpy
bool labels, a single id for a list, exports to a bad split or an unwritable path. Every refusal
names the field, the value and what is accepted, and leaves nothing stored."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _loader(wl, labels, n: int = 16):
    x = np.random.default_rng(0).random((n, 4)).astype(np.float32)
    return wl.watch_or_edit((x, labels), flag="data", loader_name="train", batch_size=8)


def _nothing_stored(wl) -> None:
    from weightslab.sdk import get_experiment

    assert len(get_experiment().label_edits) == 0
    df = wl.dataframe()
    assert "original_label" not in df or df.original_label.isna().all()


@pytest.mark.parametrize("bad", ["²", "++5", "٣", "9" * 5000, " ", 1e300, float("nan"), 2**40, [3], b"3"],
                         ids=["superscript", "double-plus", "arabic-digit", "5000-digits", "blank", "1e300",
                              "nan", "2**40", "list", "bytes"])
def test_a_label_that_is_not_a_class_index_names_field_value_and_range(wl, bad) -> None:
    from weightslab.operations import InvalidRequest

    _loader(wl, np.arange(16) % 4)
    with pytest.raises(InvalidRequest) as err:
        wl.relabel(["1"], bad)
    message = str(err.value)
    assert message.startswith("label=") and "expected a class index (an integer 0..2147483647" in message
    assert len(message) < 200  # a 5000-digit text or 1e300 is shortened, not echoed in full
    _nothing_stored(wl)


def test_a_class_beyond_the_dataset_is_refused_until_the_model_width_is_known(wl) -> None:
    from weightslab.operations import InvalidRequest

    loader = _loader(wl, np.arange(16) % 4)
    with pytest.raises(InvalidRequest, match=r"label=1000: out of range: the labels of split 'train' go up "
                                             r"to 3 .*expected 0\.\.3"):
        wl.relabel(["2"], 1000)
    _nothing_stored(wl)
    assert wl.relabel(["2"], 3)["changed"] == 1  # the dataset's highest class is fine
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="train_loss")
    model = torch.nn.Linear(4, 6)  # the model has two classes the dataset never uses
    for inputs, ids, labels in loader:  # trains: no target is out of bounds
        loss_fn(model(torch.as_tensor(inputs)), torch.as_tensor(labels), batch_ids=ids)
    assert wl.relabel(["3"], 5)["changed"] == 1  # the logits told 6 classes
    with pytest.raises(InvalidRequest, match="label=6: out of range: the model has 6 classes"):
        wl.relabel(["3"], 6)
    got = {str(int(i)): int(v) for _, ids, labels in loader for i, v in zip(ids, labels, strict=True)}
    assert (got["2"], got["3"]) == (3, 5)


def test_numpy_bool_labels_take_the_correction(wl) -> None:
    loader = _loader(wl, np.array([True, False] * 8))
    assert wl.relabel(["0"], 0)["changed"] == 1
    _, ids, labels = next(iter(loader))
    assert labels.dtype == np.bool_ and labels.tolist()[:2] == [False, False]  # was [True, False]
    from weightslab.operations import InvalidRequest

    with pytest.raises(InvalidRequest, match="label=2: out of range.*go up to 1"):
        wl.relabel(["1"], 2)


def test_a_single_id_instead_of_a_list_names_ids(wl) -> None:
    from weightslab.operations import InvalidRequest

    _loader(wl, np.arange(16) % 4)
    for one in ("5", 5):
        with pytest.raises(InvalidRequest, match=r"ids=.?5.?: expected a list of sample ids"):
            wl.relabel(one, 1)
        with pytest.raises(InvalidRequest, match="ids="):
            wl.revert_labels(one)
    _nothing_stored(wl)


def test_export_to_an_unknown_split_or_an_unwritable_path_is_clear(wl, tmp_path) -> None:
    from weightslab.operations import InvalidRequest

    _loader(wl, np.arange(16) % 4)
    wl.relabel(["1"], 2)
    with pytest.raises(InvalidRequest, match="split='trian': unknown split; known splits: train"):
        wl.export_labels(tmp_path / "l.csv", split="trian")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=r"cannot write the label export '.*a-file/labels\.csv'"):
        wl.export_labels(blocker / "labels.csv")
    with pytest.raises(InvalidRequest, match="format='txt': expected one of csv, json"):
        wl.export_labels(tmp_path / "labels.txt")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "root") == ["a-file"]  # no .tmp left
    assert blocker.read_text() == "not a folder"


def test_relabel_checkpoint_restore_restart_and_revert_in_any_order(tmp_path, monkeypatch) -> None:
    """relabel -> checkpoint -> revert, relabel others -> restore -> restart -> revert: each step sees
    exactly the corrections it should, in the table, the loader and the sample store."""
    pytest.importorskip("weightslab_data_cache")
    import weightslab as wl
    from weightslab.checkpoints import CheckpointManager
    from weightslab.sdk import get_experiment, reset_experiment

    monkeypatch.setenv("WEIGHTSLAB_ROOT_LOG_DIR", str(tmp_path / "root"))
    x = np.random.default_rng(0).random((16, 4)).astype(np.float32)
    y = np.arange(16) % 4

    def labels_of(loader) -> dict[str, int]:
        return {str(int(i)): int(v) for _, ids, ls in loader for i, v in zip(ids, ls, strict=True)}

    reset_experiment()
    try:
        loader = wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=8)
        model = wl.watch_or_edit(torch.nn.Linear(4, 4), flag="model")
        wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=0.1), flag="optimizer")
        exp = get_experiment()
        assert getattr(exp.store, "persistent", False), "expected the HDF5 store"
        manager = CheckpointManager(exp)
        wl.relabel(["1"], 3)
        saved = manager.save(note="sample 1 -> 3")
        wl.revert_labels(["1"])
        wl.relabel(["1"], 2)
        wl.relabel(["2"], 0)
        wl.pause()
        manager.restore(checkpoint_id=saved["id"])
        wl.resume()
        got = labels_of(loader)
        assert (got["1"], got["2"]) == (3, int(y[2]))
        reset_experiment()  # a restart reloads what the restore left, not what came before it

        loader = wl.watch_or_edit((x, y), flag="data", loader_name="train", batch_size=8)
        exp = get_experiment()
        assert [(r.sample_id, r.original, r.corrected) for r in exp.label_edits.records(exp.table)] == [
            ("1", float(y[1]), 3)]
        got = labels_of(loader)
        assert (got["1"], got["2"]) == (3, int(y[2]))
        assert wl.revert_labels(query="original_label is not null")["changed"] == 1
        assert labels_of(loader) == {str(i): int(y[i]) for i in range(16)}
    finally:
        reset_experiment()


def test_the_documented_revert_query_works_before_any_correction(wl) -> None:
    _loader(wl, np.arange(16) % 4)
    # README "Fixing labels while training": `original_label is not null` lists every corrected sample
    assert wl.revert_labels(query="original_label is not null")["matched"] == 0
