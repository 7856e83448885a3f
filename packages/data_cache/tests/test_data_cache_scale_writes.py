"""Store writes at scale (issue 19): int ids coded on a bitmap (same codes as sorting the new ids),
a fold that skips the sort when no key repeats (same result), and row updates written a
segment per ``ROWS_PER_WRITE`` rows, committed only once the last segment is on disk."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from weightslab.store import StoredRows
from weightslab_data_cache import h5store, rows
from weightslab_data_cache.codec import Codec
from weightslab_data_cache.h5store import H5SampleStore
from weightslab_data_cache.loader import read_store
from weightslab_data_cache.pending import Pending

# -- Codec: int ids ------------------------------------------------------------------------------


class ReferenceCodec:
    """Codes by a dict: each chunk's ids not yet coded get the next codes in ascending order."""

    def __init__(self) -> None:
        self.codes: dict[int, int] = {}

    def encode(self, chunk: np.ndarray) -> list[int]:
        for value in sorted({int(v) for v in chunk.tolist()} - self.codes.keys()):
            self.codes[value] = len(self.codes)
        return [self.codes[int(v)] for v in chunk.tolist()]


def _chunks() -> list[np.ndarray]:
    rng = np.random.default_rng(19)
    return [
        np.array([40, 7, 7, 12, 3, 40, 1000]),  # duplicates, out of order
        np.array([5, 3, 6, 12, 2, 5]),  # some known, some new, below the earlier low
        rng.integers(500, 2500, 3000),  # many duplicates, the range starting away from 0
        rng.permutation(np.arange(10_000, 12_000)),  # new ids, shuffled
        np.array([11_999, 0, 0, 2_000_000]),  # the dense table grows
        np.array([7]),
        rng.integers(0, 3_000_000, 5000),
    ]


def test_int_ids_get_the_codes_of_a_dict_assigning_new_ids_in_ascending_order() -> None:
    codec, reference = Codec(), ReferenceCodec()
    for i, chunk in enumerate(_chunks()):
        for dtype in (np.int64, np.int32) if i % 2 else (np.int64,):
            got = codec.encode(chunk.astype(dtype))
            assert got.dtype == np.int64
            assert got.tolist() == reference.encode(chunk), f"chunk {i}"
    assert codec._dense.dtype == np.int32  # 4 bytes a slot
    assert len(codec) == len(reference.codes)
    by_code = sorted(reference.codes, key=reference.codes.__getitem__)
    assert codec.strings == [str(v) for v in by_code]
    assert codec.code(12) == reference.codes[12] and codec.code("1000") == reference.codes[1000]


def test_int_ids_after_reloaded_and_text_entries_keep_their_codes() -> None:
    codec = Codec(["a", "9", "4"])  # a reloaded store
    got = codec.encode(np.array([9, 30, 4, 2, 30, 2]))
    assert got.tolist() == [1, 4, 2, 3, 4, 3] and codec._dense.dtype == np.int32
    assert codec.strings == ["a", "9", "4", "2", "30"]


def _stored_tables(codec: Codec) -> Codec:
    codec._materialise()  # what every codec did before the identity was left implicit
    return codec


def _codec_ops(seed: int) -> list[tuple[str, Any]]:
    """A random mix of what a store does to its id codec: numbered ids (in order, shuffled, with
    gaps, repeated), text ids, single codes, commits and rollbacks."""
    rng = np.random.default_rng(seed)
    ops: list[tuple[str, Any]] = []
    top = 0
    for _ in range(int(rng.integers(3, 12))):
        kind = rng.choice(["next", "shuffled", "gap", "repeat", "text", "one", "commit", "rollback"],
                          p=[0.25, 0.2, 0.08, 0.15, 0.07, 0.1, 0.1, 0.05])
        if kind in ("next", "shuffled"):
            n = int(rng.integers(1, 300))
            chunk = np.arange(top, top + n)
            ops.append(("encode", rng.permutation(chunk) if kind == "shuffled" else chunk))
            top += n
        elif kind == "gap":
            ops.append(("encode", np.array([top + 5, top])))
            top += 6
        elif kind == "repeat":
            ops.append(("encode", rng.integers(0, max(top, 1), int(rng.integers(1, 200)))))
        elif kind == "text":
            ops.append(("encode", np.array([f"img_{int(rng.integers(0, 50))}", str(top)], dtype=object)))
            top += 1
        elif kind == "one":
            ops.append(("code", str(int(rng.integers(0, top + 2)))))
        else:
            ops.append((kind, None))
    return ops


@pytest.mark.parametrize("seed", range(60))
def test_a_codec_that_leaves_its_identity_tables_implicit_codes_like_one_that_stores_them(seed: int) -> None:
    """Numbered ids coded in order keep _num and _dense implicit (8 bytes a sample); every answer --
    codes, entries, what is pending, packed bytes, after a rollback or a reload -- is the one a
    codec storing both tables gives."""
    ops = _codec_ops(seed)
    lean, stored = Codec(), _stored_tables(Codec())
    for op, arg in ops:
        if op == "encode":
            assert lean.encode(arg).tolist() == stored.encode(arg).tolist(), (op, arg)
        elif op == "code":
            assert lean.code(arg) == stored.code(arg)
        elif op == "commit":
            lean.mark_committed(len(lean))
            stored.mark_committed(len(stored))
        else:
            lean.rollback()
            stored.rollback()
        assert len(lean) == len(stored) and lean.strings == stored.strings
        (base_a, pending_a), (base_b, pending_b) = lean.pending(), stored.pending()
        assert base_a == base_b and list(pending_a) == list(pending_b)
        packed_a, packed_b = pending_a.packed(0, len(pending_a)), pending_b.packed(0, len(pending_b))
        assert (packed_a is None) == (packed_b is None)
        assert packed_a is None or packed_a.tolist() == packed_b.tolist()
    reloaded, reloaded_stored = Codec(lean.strings), _stored_tables(Codec(stored.strings))
    probe = np.arange(len(lean) + 3)
    assert reloaded.encode(probe).tolist() == reloaded_stored.encode(probe).tolist()


def test_numbered_ids_in_order_store_no_tables_until_an_id_breaks_the_identity() -> None:
    codec = Codec()
    assert codec.encode(np.arange(100_000)).tolist() == list(range(100_000))
    assert codec.encode(np.arange(100_000, 100_500)[::-1]).tolist() == list(range(100_499, 99_999, -1))
    assert codec.code("100500") == 100_500 and codec.code(7) == 7
    assert codec._identity and codec._num.nbytes + codec._dense.nbytes == 0
    assert Codec(codec.strings)._identity  # reloaded from a store: still implicit
    assert codec.code("img.png") == 100_501  # text: the tables are stored from here on
    assert not codec._identity and codec._num[:3].tolist() == [0, 1, 2] and codec._dense[100_499] == 100_499
    assert codec.encode(np.array([5, 100_501 + 7])).tolist() == [5, 100_502]


def test_encode_returns_codes_of_its_own_not_the_ids_given() -> None:
    ids = np.arange(5)
    codes = Codec().encode(ids)
    ids[0] = 99  # the caller reuses its buffer
    assert codes.tolist() == [0, 1, 2, 3, 4]


class _ReaderAtEveryAssignment(Codec):
    """After each attribute the codec assigns, reads the first ``armed`` entries as another thread
    could at that moment (a thread switch can come between any two of them)."""

    armed = 0

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if self.armed:
            seen = self._nums(0, self.armed).tolist()
            assert seen == list(range(self.armed)), f"after {name} was set a reader sees {seen[:5]}..."


def test_a_reader_never_sees_the_tables_half_built_when_the_identity_breaks() -> None:
    """A store's load() spells entries while its flusher codes new ids; the first text id stores
    the tables. Found by an attack: the flag used to flip before the tables were filled, and a
    load() in that moment failed (IndexError) or read a short list."""
    codec = _ReaderAtEveryAssignment()
    codec.encode(np.arange(2_000))
    codec.armed = 2_000
    assert codec.code("img.png") == 2_000 and not codec._identity
    assert codec.strings[:2_000] == [str(i) for i in range(2_000)]


# -- rows.fold ------------------------------------------------------------------------------------


def _patch(split: list[int], sid: list[int], columns: dict[rows.ColumnKey, rows.Column]) -> rows.RowPatch:
    return rows.RowPatch(np.asarray(split, dtype=np.int64), np.asarray(sid, dtype=np.int64), columns)


def _reference_fold(patch: rows.RowPatch) -> tuple[list[tuple[int, int]], dict[rows.ColumnKey, dict[int, Any]]]:
    """Keys in first-seen order; per column, the last value set for each key position."""
    order: list[tuple[int, int]] = []
    position: dict[tuple[int, int], int] = {}
    for key in zip(patch.split.tolist(), patch.sid.tolist(), strict=True):
        if key not in position:
            position[key] = len(order)
            order.append(key)
    cols: dict[rows.ColumnKey, dict[int, Any]] = {}
    for name, col in patch.columns.items():
        values: dict[int, Any] = {}
        for i, is_set in enumerate(col.mask().tolist()):
            if is_set:
                values[position[(int(patch.split[i]), int(patch.sid[i]))]] = col.values[i]
        cols[name] = values
    return order, cols


def _assert_folded(got: rows.RowPatch, patch: rows.RowPatch) -> None:
    order, cols = _reference_fold(patch)
    assert list(zip(got.split.tolist(), got.sid.tolist(), strict=True)) == order
    assert set(got.columns) == set(cols)
    for name, want in cols.items():
        col = got.columns[name]
        assert np.flatnonzero(col.mask()).tolist() == sorted(want), name
        for pos, value in want.items():
            have = col.values[pos]
            same = have == value or (isinstance(value, float) and np.isnan(value) and np.isnan(have))
            assert same, (name, pos, have, value)


def _columns(n: int, seed: int) -> dict[rows.ColumnKey, rows.Column]:
    rng = np.random.default_rng(seed)
    label = rng.normal(size=n)
    label[::5] = np.nan
    tag_set = rng.random(n) < 0.5
    return {("label", ""): rows.Column(label),
            ("tag", "hard"): rows.Column(rng.random(n) < 0.5, tag_set),
            ("cat", "source"): rows.Column(np.array([f"s{i % 3}" for i in range(n)], dtype=object)),
            ("discarded", ""): rows.Column(np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))}


def test_fold_of_strictly_increasing_keys_is_the_patch_as_it_is() -> None:
    """New rows coded in order (split first, then id): nothing to resolve, no copy."""
    split = [0, 0, 0, 1, 1, 2]
    sid = [3, 8, 9, 0, 4, 1]
    patch = _patch(split, sid, _columns(6, 1))
    folded = rows.fold(patch)
    assert folded is patch
    _assert_folded(folded, patch)


@pytest.mark.parametrize("case", ["repeat", "adjacent_repeat", "decreasing", "split_decreasing"])
def test_fold_resolves_what_the_fast_path_must_not_skip(case: str) -> None:
    """Keys that repeat (also next to each other) or decrease go through the resolving fold:
    first-seen order, last write wins per column; equal to a fold of the same rows in order."""
    split, sid = {
        "repeat": ([0, 0, 0, 1, 0], [1, 5, 9, 2, 5]),
        "adjacent_repeat": ([0, 0, 0, 1, 1], [1, 5, 5, 2, 7]),
        "decreasing": ([0, 0, 0, 1, 1], [1, 9, 5, 2, 7]),
        "split_decreasing": ([1, 0, 1, 2, 2], [0, 5, 4, 2, 7]),
    }[case]
    patch = _patch(split, sid, _columns(5, 2))
    folded = rows.fold(patch)
    _assert_folded(folded, patch)
    assert len(folded) == len(set(zip(split, sid, strict=True)))


def test_fold_fast_path_equals_the_resolving_fold_of_the_same_rows() -> None:
    """A patch whose keys do not repeat (fast path) and the same patch followed by rows that set
    nothing (keys repeat: the resolving fold) fold to the same rows and values."""
    n = 40
    split = np.repeat([0, 1], n // 2)
    sid = np.concatenate([np.arange(0, 40, 2), np.arange(1, 41, 2)])
    plain = _patch(split.tolist(), sid.tolist(), _columns(n, 3))
    repeat = rows.RowPatch(split[::-1].copy(), sid[::-1].copy(), {
        key: rows.Column(col.values[::-1].copy(), np.zeros(n, dtype=bool)) for key, col in plain.columns.items()})
    fast = rows.fold(plain)
    slow = rows.fold(rows.concat([plain, repeat]))
    assert slow is not plain and len(slow) == len(fast) == n
    np.testing.assert_array_equal(fast.split, slow.split)
    np.testing.assert_array_equal(fast.sid, slow.sid)
    for key in plain.columns:
        mask_fast, mask_slow = fast.columns[key].mask(), slow.columns[key].mask()
        np.testing.assert_array_equal(mask_fast, mask_slow, err_msg=str(key))
        a, b = fast.columns[key].values[mask_fast], slow.columns[key].values[mask_slow]
        assert [x if x == x else "nan" for x in a.tolist()] == [x if x == x else "nan" for x in b.tolist()], key


# -- Pending.take_rows ----------------------------------------------------------------------------


def _stored(ids: np.ndarray, split: str = "train", label: np.ndarray | None = None) -> StoredRows:
    n = len(ids)
    return StoredRows(split=np.full(n, split, dtype=object), sample_id=np.asarray(ids),
                      label=np.arange(n, dtype=np.float64) if label is None else label,
                      discarded=np.zeros(n, dtype=bool), tags={"even": np.asarray(ids) % 2 == 0},
                      categories={}, metadata={})


def test_take_rows_takes_the_first_row_updates_and_leaves_the_other_operations_for_the_last() -> None:
    pending = Pending()
    pending.add_history("loss", "train", np.array([1, 2, 3]), np.array([5, 5, 5]), np.array([0.1, 0.2, 0.3]), "b")
    pending.add_curve("loss", "train", "b", 5, 0.2)
    pending.add_predictions("train", np.array([1, 2]), 5, np.zeros((2, 3)))
    sizes = [50, 60, 30, 100, 10]
    for i, size in enumerate(sizes):
        pending.add_rows(_stored(np.arange(size) + 1000 * i))
    assert pending.values == 3 + 1 + 6 + sum(sizes)
    head = pending.take_rows(100)
    assert head is not None
    assert [op.ids.shape[0] for op in head.rows] == [50]  # 50 + 60 would pass 100
    assert not head.history and not head.curves and not head.predictions  # written with the last rows
    assert [op.ids.shape[0] for op in pending.rows] == [60, 30, 100, 10]
    assert list(pending.history) == ["loss"] and len(pending.curves) == 1 and len(pending.predictions) == 1
    assert head.values == 50 and pending.values == 3 + 1 + 6 + 200
    second = pending.take_rows(100)
    assert second is not None and [op.ids.shape[0] for op in second.rows] == [60, 30] and second.values == 90
    third = pending.take_rows(100)  # an update larger than the limit is still written (alone)
    assert third is not None and [op.ids.shape[0] for op in third.rows] == [100]
    assert pending.take_rows(100) is None and [op.ids.shape[0] for op in pending.rows] == [10]
    pending.put_back(third)  # its write failed: it goes first again
    assert [op.ids.shape[0] for op in pending.rows] == [100, 10] and pending.values == 3 + 1 + 6 + 110


def test_take_rows_of_a_batch_that_fits_changes_nothing() -> None:
    pending = Pending()
    pending.add_curve("acc", "val", "b", 1, 0.5)
    pending.add_rows(_stored(np.arange(40)))
    pending.add_rows(_stored(np.arange(40, 100)))
    assert pending.take_rows(100) is None
    assert [op.ids.shape[0] for op in pending.rows] == [40, 60] and pending.values == 101


# -- H5SampleStore: a segment per ROWS_PER_WRITE rows --------------------------------------------


class WriteSpy:
    """Wraps a store's segment writes: rows per write, and the store's counters just before."""

    def __init__(self, store: H5SampleStore) -> None:
        self.store = store
        self.real = store._write_segment
        self.rows: list[int] = []
        self.history: list[int] = []
        self.before: list[dict[str, Any]] = []

    def __call__(self, batch: Pending) -> None:
        self.rows.append(sum(op.ids.shape[0] for op in batch.rows))
        self.history.append(sum(op.ids.shape[0] for ops in batch.history.values() for op in ops))
        self.before.append(self.store.stats)
        self.real(batch)


def _write_rows(store: H5SampleStore, updates: int, per_update: int) -> None:
    for i in range(updates):
        ids = np.arange(i * per_update, (i + 1) * per_update)
        store.update_rows(_stored(ids, label=ids * 0.5))
    store.append_history("loss", "train", np.arange(5), np.full(5, 3), np.linspace(0.0, 1.0, 5), "b0")


def _assert_all_rows(state: Any, n: int) -> None:
    stored = state.rows
    assert stored is not None and len(stored.sample_id) == n
    ids = np.array([int(s) for s in stored.sample_id.tolist()])
    assert sorted(ids.tolist()) == list(range(n))
    np.testing.assert_array_equal(stored.label.astype(np.float64), ids * 0.5)
    np.testing.assert_array_equal(stored.tags["even"], ids % 2 == 0)
    assert set(stored.split.tolist()) == {"train"}
    assert state.history["loss"].value.tolist() == np.linspace(0.0, 1.0, 5).tolist()


def _spied_store(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[H5SampleStore, WriteSpy]:
    """A store that writes at most 100 row updates a segment (no timed flush, no merge), its
    segment writes recorded."""
    monkeypatch.setattr(h5store, "ROWS_PER_WRITE", 100)
    store = H5SampleStore(path, flush_interval=3600, compact_fanout=1000)
    spy = WriteSpy(store)
    store._write_segment = spy  # type: ignore[method-assign]
    return store, spy


def test_many_row_updates_are_written_in_several_segments_committed_at_the_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "store"
    store, spy = _spied_store(path, monkeypatch)
    try:
        _write_rows(store, 10, 100)  # 1,000 rows
        store.flush()
        # flush returned: every segment is on disk, nothing is left queued
        assert spy.rows == [100] * 10 and sum(spy.history) == 5 and spy.history[-1] == 5  # with the last rows
        stats = store.stats
        assert stats["committed"] == stats["enqueued"] and stats["pending_values"] == 0
        assert stats["segments"] == 10 and len(store.segment_files()) == 10
        # nothing was committed before the last segment was written (flush would have returned)
        assert all(before["committed"] < before["enqueued"] for before in spy.before)
        _assert_all_rows(read_store(path), 1000)  # a reader (no lock) sees every row at once
    finally:
        store.close()
    with H5SampleStore(path) as reopened:
        _assert_all_rows(reopened.load(), 1000)


def test_one_large_row_update_is_written_and_reads_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A single update of 1,000 rows (more than ROWS_PER_WRITE): take_rows keeps at least one
    update per segment, so it goes whole, and every row is on disk when flush returns."""
    path = tmp_path / "store"
    store, spy = _spied_store(path, monkeypatch)
    try:
        _write_rows(store, 1, 1000)
        store.update_rows(_stored(np.arange(1000, 1050), label=np.arange(1000, 1050) * 0.5))
        store.flush()
        assert spy.rows == [1000, 50]  # the later update in a segment of its own
        assert store.stats["committed"] == store.stats["enqueued"]
        _assert_all_rows(read_store(path), 1050)
    finally:
        store.close()
    with H5SampleStore(path) as reopened:
        _assert_all_rows(reopened.load(), 1050)


def test_updates_that_fit_are_written_in_one_segment(tmp_path: Path) -> None:
    store = H5SampleStore(tmp_path / "store", flush_interval=3600, compact_fanout=1000)
    try:
        spy = WriteSpy(store)
        store._write_segment = spy  # type: ignore[method-assign]
        _write_rows(store, 10, 100)  # far below the default ROWS_PER_WRITE
        store.flush()
        assert spy.rows == [1000] and len(store.segment_files()) == 1
        _assert_all_rows(store.load(), 1000)
    finally:
        store.close()


def test_append_history_with_a_column_of_steps_is_written_not_quarantined(tmp_path: Path) -> None:
    from weightslab_data_cache.h5store import H5SampleStore
    path = tmp_path / "s"
    s = H5SampleStore(path, flush_interval=3600)
    s.append_history("loss", "train", np.array([1, 2, 3]), np.array([[5], [6], [7]]), np.array([0.1, 0.2, 0.3]), "main")
    s.append_history("loss", "train", np.array([4, 5]), np.array([8, 8]), np.array([0.4, 0.5]), "main")
    s.flush()
    s.close()
    assert not (path / "quarantine").exists()  # HEAD: the whole batch is quarantined
    with H5SampleStore(path) as r:
        assert np.asarray(r.load().history["loss"].step).tolist() == [5, 6, 7, 8, 8]


# -- dictionaries: numbered ids written as ASCII bytes -------------------------------------------


def test_numbered_ids_are_written_without_a_string_each_and_read_back_as_the_same_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dictionary slice of numbered ids goes to HDF5 as an ``S`` array (no Python string per id);
    the dataset is still variable-length UTF-8 text, slices with a text id are written as strings,
    and a merge (which reads the text back) keeps every id."""
    import h5py
    from weightslab_data_cache import segment_io

    monkeypatch.setattr(segment_io, "_DICT_SLICE", 64)  # several slices, the last one with a text id
    pieces: list[str] = []
    real = segment_io._dict_piece

    def spy(entries: Any, start: int, stop: int) -> np.ndarray:
        piece = real(entries, start, stop)
        pieces.append(piece.dtype.kind)
        return piece

    monkeypatch.setattr(segment_io, "_dict_piece", spy)
    path = tmp_path / "store"
    with H5SampleStore(path, flush_interval=3600, compact_fanout=2) as store:
        store.update_rows(_stored(np.arange(200), label=np.arange(200) * 0.5))
        store.update_rows(StoredRows(split=np.full(3, "train", dtype=object),
                                     sample_id=np.array(["cat-1", "7", "dog"], dtype=object),
                                     label=np.ones(3), discarded=np.zeros(3, dtype=bool), tags={},
                                     categories={}, metadata={}))
        store.flush()
        assert "S" in pieces and "O" in pieces
        (first,) = store.segment_files()[:1]
        with h5py.File(first) as f:
            dset = f["dict/ids"]
            info = h5py.check_string_dtype(dset.dtype)
            assert info is not None and info.encoding == "utf-8" and info.length is None  # variable-length text
            assert dset.asstr()[:].tolist() == [str(i) for i in range(200)] + ["cat-1", "dog"]
        store.update_rows(_stored(np.arange(200, 300), label=np.arange(200, 300) * 0.5))
        store.flush()
        store.compact()  # (the background compactor may have merged them already)
        assert len(store.segment_files()) == 1
    state = read_store(path)
    assert state.rows is not None
    assert sorted(state.rows.sample_id.tolist()) == sorted([str(i) for i in range(300)] + ["cat-1", "dog"])


def test_rows_of_one_split_given_as_a_view_are_queued_once_and_written_per_row(tmp_path: Path) -> None:
    """A read-only stride-0 view of one split name (what the experiment gives for a loader's rows)
    is queued as one name, not a pointer per row; the segment, the read-back rows and a quarantined
    batch's JSON are those of the per-row array. A view of the wrong length is refused."""
    from weightslab_data_cache import quarantine

    ids = np.arange(1000)
    view = np.broadcast_to(np.array("train", dtype=object), len(ids))
    pending, reference = Pending(), Pending()
    pending.add_rows(StoredRows(split=view, sample_id=ids, label=ids * 0.5, discarded=np.zeros(1000, bool),
                                tags={"even": ids % 2 == 0}, categories={}, metadata={}))
    reference.add_rows(StoredRows(split=np.full(1000, "train", dtype=object), sample_id=ids, label=ids * 0.5,
                                  discarded=np.zeros(1000, bool), tags={"even": ids % 2 == 0}, categories={},
                                  metadata={}))
    assert pending.rows[0].split.ndim == 0 and pending.rows[0].split.item() == "train"
    error = OSError("disk on fire")
    got, want = quarantine.as_json(pending, error), quarantine.as_json(reference, error)
    got.pop("time", None), want.pop("time", None)
    assert got == want
    with pytest.raises(ValueError, match="999 splits for 1000 sample ids"):
        Pending().add_rows(StoredRows(split=view[:999], sample_id=ids, label=ids * 0.5,
                                      discarded=np.zeros(1000, bool)))
    path = tmp_path / "store"
    with H5SampleStore(path, flush_interval=3600) as store:
        store.update_rows(StoredRows(split=view, sample_id=ids, label=ids * 0.5, discarded=np.zeros(1000, bool),
                                     tags={"even": ids % 2 == 0}))
        store.update_rows(_stored(np.arange(1000, 1010), split="val", label=np.arange(1000, 1010) * 0.5))
    state = read_store(path)
    assert state.rows is not None
    by_id = dict(zip(state.rows.sample_id.tolist(), state.rows.split.tolist(), strict=True))
    assert by_id == {**{str(i): "train" for i in range(1000)}, **{str(i): "val" for i in range(1000, 1010)}}


def test_a_column_of_splits_is_queued_flat_and_its_quarantine_json_is_per_row() -> None:
    """A split column shaped (n, 1) (plain or a stride-0 view) is one split a row: queued flat, so
    a failed write can still be kept aside as JSON; (n, 2) is refused."""
    from weightslab_data_cache import quarantine

    ids = np.arange(4)
    reference = Pending()
    reference.add_rows(StoredRows(split=np.full(4, "train", dtype=object), sample_id=ids, label=ids * 1.0,
                                  discarded=np.zeros(4, bool)))
    want = quarantine.as_json(reference, OSError("x"))
    for split in (np.full((4, 1), "train", dtype=object),
                  np.broadcast_to(np.array("train", dtype=object), (4, 1))):
        pending = Pending()
        pending.add_rows(StoredRows(split=split, sample_id=ids, label=ids * 1.0, discarded=np.zeros(4, bool)))
        assert pending.rows[0].split.ndim <= 1
        assert quarantine.as_json(pending, OSError("x"))["rows"] == want["rows"]
    with pytest.raises(ValueError, match="splits for 4 sample ids"):
        Pending().add_rows(StoredRows(split=np.full((4, 2), "train", dtype=object), sample_id=ids,
                                      label=ids * 1.0, discarded=np.zeros(4, bool)))


# -- Heap pages after large writes ----------------------------------------------------------------


def test_a_large_write_and_a_merge_give_their_heap_pages_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a write of _RELEASE_AFTER_VALUES values or more, and after background merges, the flusher
    returns the freed heap to the OS (weightslab.heap, tested there on a real heap); small writes
    (the usual 1 s flush of a few batches) do not pay for it. Counted, not measured: RSS here would
    be the whole test process's."""
    released: list[str] = []
    monkeypatch.setattr(h5store, "release_free_heap", lambda: released.append(threading.current_thread().name))
    monkeypatch.setattr(h5store, "_RELEASE_AFTER_VALUES", 500)
    store = H5SampleStore(tmp_path / "store", flush_interval=3600, compact_fanout=2)
    try:
        store.update_rows(_stored(np.arange(100)))
        store.flush()
        assert released == []
        store.update_rows(_stored(np.arange(100, 700)))
        store.flush()  # the second segment: a merge follows in the background
        deadline = time.monotonic() + 10
        while len(released) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # poll with a deadline: the merge runs on the compactor thread
        assert sorted(released) == ["weightslab-h5-compactor", "weightslab-h5-flusher"]
        assert sorted(int(s) for s in store.load().rows.sample_id.tolist()) == list(range(700))
    finally:
        store.close()
