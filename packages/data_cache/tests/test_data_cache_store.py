"""H5SampleStore: round trips, reload, predictions on/off, enqueue-only callers, layout."""

from __future__ import annotations

import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
from weightslab.store import SampleStore, StoredRows
from weightslab_data_cache.h5store import H5SampleStore
from weightslab_data_cache.loader import read_store
from weightslab_data_cache.manifest import Manifest, StoreLockedError


def _rows(ids, split="train", **columns) -> StoredRows:  # noqa: ANN001
    n = len(ids)
    return StoredRows(
        split=np.full(n, split, dtype=object), sample_id=np.asarray(ids),
        label=columns.pop("label", np.full(n, np.nan)), discarded=columns.pop("discarded", np.zeros(n, bool)),
        tags=columns.pop("tags", {}), categories=columns.pop("categories", {}),
        metadata=columns.pop("metadata", {}),
    )


@pytest.fixture
def store(tmp_path: Path):
    s = H5SampleStore(tmp_path / "store", flush_interval=60)
    yield s
    s.close()


def test_satisfies_the_sample_store_protocol(store: H5SampleStore) -> None:
    assert isinstance(store, H5SampleStore) and store.persistent is True
    proto: SampleStore = store  # static check via mypy on the package
    assert proto.load().rows is None


def test_round_trip_of_every_column_kind(store: H5SampleStore) -> None:
    store.update_rows(StoredRows(
        split=np.array(["train", "train", "val"], dtype=object),
        sample_id=np.array([1, 2, 3]),
        label=np.array([0.0, 1.0, np.nan]),
        discarded=np.array([False, True, False]),
        tags={"hard": np.array([True, False, True]), "dup": np.array([False, False, True])},
        categories={"source": np.array(["web", None, "cam é"], dtype=object)},
        metadata={"width": np.array([32, 64, 128]), "note": np.array(["a", None, {"k": [1, 2]}], dtype=object)},
    ))
    store.update_rows(_rows(["s-4"], split="test", label=np.array(["cat"], dtype=object)))
    store.append_history("loss", "train", np.array([1, 2]), np.array([10, 10]), np.array([0.5, 0.25]), "b0")
    store.append_history("loss", "val", np.array(["3"]), np.array([11]), np.array([1.5]), "b1")
    store.append_history("acc", "train", np.array([1]), np.array([10]), np.array([1.0]), "b0")
    store.append_curve("loss", "train", "b0", 10, 0.375)
    store.append_curve("loss", "train", "b0", 20, 0.125)
    store.append_curve("loss", "val", "b1", 11, 1.5)
    store.append_predictions("train", np.array([1, 2]), 10, np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16))
    store.append_predictions("val", np.array([3]), 11, np.array([0.5], dtype=np.float16))
    store.flush()

    state = store.load()
    rows = state.rows
    assert rows is not None
    assert rows.split.tolist() == ["train", "train", "val", "test"]
    assert rows.sample_id.tolist() == ["1", "2", "3", "s-4"]
    assert rows.label.dtype == object  # a text label turned the column into objects
    assert rows.label[:2].tolist() == [0.0, 1.0] and rows.label[3] == "cat"
    assert rows.discarded.tolist() == [False, True, False, False]
    assert rows.tags["hard"].tolist() == [True, False, True, False]
    assert rows.tags["dup"].dtype == bool
    assert rows.categories["source"].tolist() == ["web", None, "cam é", None]
    np.testing.assert_array_equal(rows.metadata["width"][:3], [32.0, 64.0, 128.0])
    assert np.isnan(rows.metadata["width"][3])
    assert rows.metadata["note"].tolist() == ["a", None, {"k": [1, 2]}, None]

    loss = state.history["loss"]
    assert loss.split.tolist() == ["train", "train", "val"]
    assert loss.sample_id.tolist() == ["1", "2", "3"]
    assert loss.step.dtype == np.int64 and loss.step.tolist() == [10, 10, 11]
    assert loss.value.dtype == np.float64 and loss.value.tolist() == [0.5, 0.25, 1.5]
    assert loss.branch.tolist() == ["b0", "b0", "b1"]
    assert state.history["acc"].value.tolist() == [1.0]
    assert state.curves[("loss", "train", "b0")].step.tolist() == [10, 20]
    assert state.curves[("loss", "train", "b0")].value.tolist() == [0.375, 0.125]
    assert state.curves[("loss", "val", "b1")].value.tolist() == [1.5]
    pred = state.predictions["train"]
    assert pred["value"].dtype == np.int16 and pred["value"].tolist() == [[1, 2, 3], [4, 5, 6]]
    assert pred["sample_id"].tolist() == ["1", "2"] and pred["step"].tolist() == [10, 10]
    assert state.predictions["val"]["value"].dtype == np.float16


def test_upserts_keep_unrelated_columns_and_last_write_wins(store: H5SampleStore) -> None:
    store.update_rows(_rows([1, 2], label=np.array([3.0, 4.0]), tags={"a": np.array([True, True])}))
    store.flush()
    # a later update of one tag only: labels and tag "a" stay
    store.update_rows(StoredRows(split=np.array(["train"], dtype=object), sample_id=np.array(["2"]),
                                 label=None, discarded=None, tags={"b": np.array([True])}))  # type: ignore[arg-type]
    store.update_rows(_rows([1], label=np.array([9.0]), discarded=np.array([True])))
    store.update_rows(_rows([1], label=np.array([7.0])))
    rows = store.load().rows
    assert rows is not None
    assert rows.sample_id.tolist() == ["1", "2"]
    assert rows.label.tolist() == [7.0, 4.0]
    assert rows.discarded.tolist() == [False, False]
    assert rows.tags["a"].tolist() == [True, True]
    assert rows.tags["b"].tolist() == [False, True]


def test_int_and_text_ids_are_the_same_sample(store: H5SampleStore) -> None:
    store.update_rows(_rows([7], label=np.array([1.0])))
    store.update_rows(_rows(np.array(["7"]), label=np.array([2.0])))
    store.update_rows(_rows(np.array([np.int32(7)]), label=np.array([3.0])))
    rows = store.load().rows
    assert rows is not None and rows.sample_id.tolist() == ["7"] and rows.label.tolist() == [3.0]


def test_reload_after_restart_and_continue_appending(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with H5SampleStore(path, chunk_size=3) as s:
        for step in range(5):
            s.append_history("loss", "train", np.arange(10), np.full(10, step), np.full(10, step / 10), "b")
            s.append_curve("loss", "train", "b", step, step / 10)
        s.update_rows(_rows(np.arange(10), tags={"t": np.arange(10) % 2 == 0}))
    with H5SampleStore(path, chunk_size=3) as s:
        state = s.load()
        assert len(state.history["loss"].step) == 50
        s.append_history("loss", "train", np.array([10, 3]), np.array([5, 5]), np.array([0.5, 0.5]), "b2")
        s.update_rows(_rows([10], tags={"t": np.array([True])}))
    state = read_store(path)
    hist = state.history["loss"]
    assert len(hist.step) == 52 and hist.sample_id[-2:].tolist() == ["10", "3"]
    assert hist.branch[-1] == "b2" and hist.branch[0] == "b"
    assert state.rows is not None and len(state.rows.sample_id) == 11
    assert state.curves[("loss", "train", "b")].step.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("save", [True, False])
def test_predictions_on_off(tmp_path: Path, save: bool) -> None:
    with H5SampleStore(tmp_path / "s", save_predictions=save) as s:
        s.append_predictions("train", np.array([1, 2]), 3, np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32))
        s.append_history("loss", "train", np.array([1]), np.array([3]), np.array([0.1]), "b")
        state = s.load()
        files = s.segment_files()
    assert ("train" in state.predictions) is save
    with h5py.File(files[0], "r") as f:
        assert ("predictions" in f) is save
    if save:
        np.testing.assert_array_equal(state.predictions["train"]["value"],
                                      np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32))


def test_predictions_of_several_kinds_are_lossless(store: H5SampleStore) -> None:
    logits = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float64)
    store.append_predictions("a", np.arange(4), 1, logits)
    store.append_predictions("a", np.arange(4), 2, logits * 2)
    store.append_predictions("b", np.arange(2), 1, np.array([True, False]))
    store.append_predictions("c", np.arange(2), 1, np.array(["cat", "dog"]))
    store.append_predictions("d", np.arange(2), 1, np.array([[1, 2], [3, 4]], dtype=np.uint8))
    store.append_predictions("d", np.arange(2), 2, np.array([5.5, 6.5]))  # another dtype/shape
    state = store.load()
    np.testing.assert_array_equal(state.predictions["a"]["value"], np.concatenate([logits, logits * 2]))
    assert state.predictions["a"]["value"].dtype == np.float64
    assert state.predictions["a"]["step"].tolist() == [1] * 4 + [2] * 4
    assert state.predictions["b"]["value"].dtype == bool
    assert state.predictions["c"]["value"].tolist() == ["cat", "dog"]
    mixed = state.predictions["d"]["value"]
    assert mixed.dtype == object and len(mixed) == 4
    assert mixed[0].dtype == np.uint8 and mixed[0].tolist() == [1, 2] and mixed[3] == 6.5


def test_callers_only_enqueue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No h5py call happens on the caller's thread; the flusher writes."""
    writer_threads: set[str] = set()
    real_file = h5py.File

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        writer_threads.add(threading.current_thread().name)
        return real_file(*args, **kwargs)

    with H5SampleStore(tmp_path / "s", flush_interval=60) as s:
        monkeypatch.setattr(h5py, "File", spy)
        s.append_history("loss", "train", np.arange(1000), np.zeros(1000, int), np.ones(1000), "b")
        s.append_curve("loss", "train", "b", 0, 1.0)
        s.append_predictions("train", np.arange(3), 0, np.zeros((3, 2)))
        s.update_rows(_rows([1]))
        assert writer_threads == set() and s.stats["committed"] == 0
        s.flush()
        assert s.stats["committed"] == 4
    assert writer_threads == {"weightslab-h5-flusher"}


def test_caller_arrays_are_copied(store: H5SampleStore) -> None:
    values = np.ones(3)
    ids = np.array([1, 2, 3])
    store.append_history("loss", "train", ids, np.zeros(3, int), values, "b")
    values[:] = 9
    ids[:] = 0
    hist = store.load().history["loss"]
    assert hist.value.tolist() == [1, 1, 1] and hist.sample_id.tolist() == ["1", "2", "3"]


def test_bad_lengths_fail_on_the_caller(store: H5SampleStore) -> None:
    with pytest.raises(ValueError, match="3 ids, 2 steps"):
        store.append_history("loss", "train", np.arange(3), np.arange(2), np.arange(3), "b")
    with pytest.raises(ValueError, match="predictions"):
        store.append_predictions("train", np.arange(3), 0, np.zeros((2, 4)))


def test_flush_appends_new_files_only(tmp_path: Path) -> None:
    """A flush writes one new segment; committed files are never rewritten by it."""
    with H5SampleStore(tmp_path / "s", flush_interval=60, compact_fanout=100) as s:
        s.append_history("loss", "train", np.arange(100), np.zeros(100, int), np.ones(100), "b")
        s.flush()
        first = s.segment_files()
        stat = [(p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in first]
        s.append_history("loss", "train", np.arange(100), np.ones(100, int), np.ones(100), "b")
        s.flush()
        files = s.segment_files()
        assert files[: len(first)] == first and len(files) == len(first) + 1
        assert [(p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in first] == stat


def test_segments_are_resizable_chunked_plain_hdf5(tmp_path: Path) -> None:
    with H5SampleStore(tmp_path / "s", chunk_size=4) as s:
        s.append_history("loss", "train", np.arange(10), np.zeros(10, int), np.ones(10), "b")
        s.update_rows(_rows(["x"], categories={"c": np.array(["é"], dtype=object)}))
        s.flush()
        files = s.segment_files()
    with h5py.File(files[0], "r") as f:
        sid = next(iter(f["history"].values()))["sid"]
        assert sid.chunks is not None and sid.maxshape == (None,)
        assert f["dict/ids"].dtype.metadata["vlen"] is str
        group = next(g for g in f["rows/columns"].values() if g.attrs["kind"] == "cat")
        assert group.attrs["name"] == "c" and group.attrs["enc"] == "str"
        assert group["value"].asstr()[0] == "é"


def test_compaction_merges_and_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with H5SampleStore(path, compact_fanout=2) as s:
        for step in range(9):
            s.append_history("loss", "train", np.arange(5), np.full(5, step), np.full(5, float(step)), "b")
            s.update_rows(_rows(np.arange(5), label=np.full(5, float(step))))
            s.flush()
        s.compact()
        levels = [seg.level for seg in Manifest.read(path).segments]
        assert levels == sorted(levels, reverse=True) and max(levels) >= 2 and len(levels) <= 4
        assert len(list(path.glob("seg-*.h5"))) == len(levels)  # merged inputs deleted
    with H5SampleStore(path, compact_fanout=2) as s:
        state = s.load()
    assert state.history["loss"].step.tolist() == np.repeat(np.arange(9), 5).tolist()
    assert state.rows is not None and state.rows.label.tolist() == [8.0] * 5


def test_second_writer_is_refused_but_readers_work(store: H5SampleStore) -> None:
    store.append_history("loss", "train", np.arange(2), np.zeros(2, int), np.ones(2), "b")
    store.flush()
    with pytest.raises(StoreLockedError):
        H5SampleStore(store.path)
    assert read_store(store.path).history["loss"].value.tolist() == [1.0, 1.0]


def test_background_flush_without_explicit_flush(tmp_path: Path) -> None:
    done = threading.Event()
    with H5SampleStore(tmp_path / "s", flush_interval=0.01) as s:
        real = s._write

        def write(batch):  # noqa: ANN001, ANN202
            real(batch)
            done.set()

        s._write = write  # type: ignore[method-assign]
        s.append_curve("loss", "train", "b", 1, 0.5)
        assert done.wait(10)
        assert read_store(s.path).curves[("loss", "train", "b")].value.tolist() == [0.5]


def test_closed_store_refuses_appends(tmp_path: Path) -> None:
    s = H5SampleStore(tmp_path / "s")
    s.close()
    s.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        s.append_curve("loss", "train", "b", 1, 0.5)
