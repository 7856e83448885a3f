"""Sample-id codes: integer ids (dense table, no dict entry per id) and their decimal text share
one code, whatever order they arrive in, across rollbacks (issue 19)."""

from __future__ import annotations

import numpy as np
import pytest
from weightslab_data_cache.codec import Codec


def test_int_and_text_ids_share_codes_in_any_order() -> None:
    codec = Codec(["a", "12"])  # a reloaded store: "12" known as text
    first = codec.encode(np.array([5, 12, 3, 5]))
    assert first.tolist() == [3, 1, 2, 3]  # new ids coded in sorted order
    assert codec.encode(np.array(["3", "a", "12", "7", "05"], dtype=object)).tolist() == [2, 0, 1, 4, 5]
    assert codec.encode(np.array([7, 3])).tolist() == [4, 2]
    assert codec.code(5) == 3 and codec.code("5") == 3 and codec.code(np.int64(7)) == 4
    assert codec.strings == ["a", "12", "3", "5", "7", "05"]
    assert codec.table()[codec.encode(np.array([3, 12]))].tolist() == ["3", "12"]


def test_rollback_forgets_uncommitted_int_ids() -> None:
    codec = Codec()
    codec.encode(np.array([1, 2]))
    codec.mark_committed(len(codec))
    codec.encode(np.array([3, 4]))
    codec.code("x")
    codec.rollback()
    assert codec.strings == ["1", "2"]
    assert codec.encode(np.array([4, 1])).tolist() == [2, 0]
    assert codec.code("x") == 3 and codec.pending() == (2, ["4", "x"])


def test_decimal_text_arrays_are_coded_like_their_entries() -> None:
    """A large array of decimal text ids takes the vectorised path; anything not canonical
    (" 7", "07", 7.0, True, -3) keeps its own text: the same entries, decoding to the same ids,
    as coding them one by one."""
    texts = np.array([str(i) for i in range(100)], dtype=object)
    odd = [" 7", "07", 7.0, True, "-3", 5, "x"]
    for extra in ([], odd):
        batch = np.array(list(texts) + extra, dtype=object)
        fast, slow = Codec(["3"]), Codec(["3"])
        got = fast.encode(batch)
        want = np.array([slow.code(v) for v in batch.tolist()])
        assert got.tolist() == want.tolist()
        assert sorted(fast.strings) == sorted(slow.strings)  # same entries (new ones in sorted order)
        assert fast.table()[got].tolist() == slow.table()[want].tolist()
    unicode_ids = np.array([str(i) for i in range(200, 300)])
    codec = Codec()
    codes = codec.encode(unicode_ids)
    assert codec.table()[codes].tolist() == unicode_ids.tolist()


def test_repeated_names_are_coded_like_one_by_one() -> None:
    """A split or branch name repeated on every row (a loader's registration) is coded once per
    distinct name, with the codes, entries and order of first appearance of coding one by one;
    mixed types keep their own text."""
    rng = np.random.default_rng(0)
    cases = [np.array(["train"] * 500, dtype=object),
             np.array(rng.choice(["val", "train", "test"], 900).tolist(), dtype=object),
             np.array(["b", "a"] * 100 + [7, 7.0, True] * 10, dtype=object),
             np.array(["x"] * 99 + ["y"], dtype="<U1")]
    for values in cases:
        fast, slow = Codec(["a"]), Codec(["a"])
        codes = fast.encode(values)
        assert codes.tolist() == [slow.code(v) for v in values.tolist()]
        assert fast.strings == slow.strings


def test_a_reloaded_dictionary_codes_every_entry_as_before() -> None:
    """Entries kept as ints (decimal ids) or text, spelled out by ``strings`` and read back by a new
    codec (a store reopened): the same code for every id, duplicates refused."""
    codec = Codec()
    codec.encode(np.arange(5000, 0, -1))
    for extra in ("07", "x", " 7", "-3", str(1 << 40)):
        codec.code(extra)
    codec.encode(np.array([str(i) for i in range(4990, 5100)], dtype=object))
    again = Codec(codec.strings)
    assert again.strings == codec.strings and len(again) == len(codec)
    probe = np.array(["07", "x", "1", "5099", " 7", "-3", str(1 << 40), "5000"], dtype=object)
    assert again.encode(probe).tolist() == codec.encode(probe).tolist()
    assert again.encode(np.arange(1, 5100)).tolist() == codec.encode(np.arange(1, 5100)).tolist()
    assert again.pending() == (len(codec), [])
    with pytest.raises(ValueError, match="duplicate"):
        Codec(["1", "2", "1"])
    with pytest.raises(ValueError, match="duplicate"):
        Codec(["a", "b", "a"])


def test_a_segment_of_many_new_ids_reloads_every_id(tmp_path) -> None:
    """More new ids than one dictionary slice, int and text, in one segment and across a second
    one (compacted or not): every row comes back with its own id after reopening."""
    from weightslab.store import StoredRows
    from weightslab_data_cache.h5store import H5SampleStore

    ints = np.arange(150_000, dtype=np.int64)[::-1].copy()
    texts = np.array([f"img-{i}" for i in range(70_000)] + ["007", "-3"], dtype=object)

    def rows_of(ids: np.ndarray) -> StoredRows:
        return StoredRows(split=np.full(len(ids), "train", dtype=object), sample_id=ids,
                          label=np.arange(len(ids), dtype=np.float64), discarded=np.zeros(len(ids), dtype=bool))

    want = {str(v): float(i) for i, v in enumerate(ints.tolist())}
    want.update({v: float(i) for i, v in enumerate(texts.tolist())})
    for merged in (False, True):
        folder = tmp_path / f"store-{merged}"
        with H5SampleStore(folder, flush_interval=60, compact_fanout=2) as store:
            store.update_rows(rows_of(ints))
            store.flush()
            store.update_rows(rows_of(texts))
            store.flush()
            if merged:  # the two segments merged into one: dictionaries copied slice by slice
                store.compact()  # (or the background compactor did it first)
                assert len(store.segment_files()) == 1
        with H5SampleStore(folder, flush_interval=60) as reopened:
            state = reopened.load()
        assert state.rows is not None
        got = dict(zip(state.rows.sample_id.tolist(), state.rows.label.tolist(), strict=True))
        assert got == want
