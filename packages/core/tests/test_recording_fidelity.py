"""What a training run records, value for value: table, history, curves, store writes and the
mislabel columns, against a reference computed here from the same batches.

Pins the recorded data while the recording path is optimised (issue 19: batching, compact
dtypes, index structures): any change in what is kept, or in which value wins, fails here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from weightslab.data import WatchedLoader
from weightslab.experiment import Experiment
from weightslab.mislabel import MislabelTracker
from weightslab.store import MemorySampleStore

ENV = {"WEIGHTSLAB_DISABLED_PLUGINS": "data_cache,grpc_server,cli,watchdog,auth,agent,studio,example",
       "WEIGHTSLAB_LOG_LEVEL": "WARNING"}
N, FEATURES, CLASSES, BATCH, EPOCHS = 53, 4, 3, 8, 3


class RecordingStore(MemorySampleStore):
    """The in-memory store, keeping every write it receives (in order)."""

    def __init__(self) -> None:
        self.history: list[tuple[Any, ...]] = []
        self.curves: list[tuple[Any, ...]] = []
        self.predictions: list[tuple[Any, ...]] = []

    def append_history(self, signal: str, split: str, sample_ids: np.ndarray, steps: np.ndarray,
                       values: np.ndarray, branch: str) -> None:
        self.history.append((signal, split, [str(s) for s in np.asarray(sample_ids).tolist()],
                             np.asarray(steps).tolist(), np.asarray(values, dtype=np.float64).copy(), branch))

    def append_curve(self, signal: str, split: str, branch: str, step: int, value: float) -> None:
        self.curves.append((signal, split, branch, int(step), float(value)))

    def append_predictions(self, split: str, sample_ids: np.ndarray, step: int, predictions: np.ndarray) -> None:
        self.predictions.append((split, [str(s) for s in np.asarray(sample_ids).tolist()], int(step),
                                 np.asarray(predictions).tolist()))


def _batch_values(x: np.ndarray, y: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic per-sample loss (a NaN now and then), logits and predictions of one batch."""
    logits = np.stack([x[:, c % FEATURES] * (1.0 + 0.1 * step) - 0.2 * c for c in range(CLASSES)], axis=1)
    shifted = logits - logits.max(axis=1, keepdims=True)
    loss = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(y)), y]
    if step % 4 == 1:
        loss[0] = np.nan  # kept in the history, never the latest value
    return loss, logits, logits.argmax(axis=1)


def test_recorded_values_match_a_reference_run(tmp_path) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(N, FEATURES))
    y = rng.integers(0, CLASSES, N)
    exp = Experiment(kwargs={"root_log_dir": tmp_path}, environ=ENV)
    exp.start()
    store = RecordingStore()
    exp.store = store
    try:
        loader = WatchedLoader(exp, (x, y), loader_name="train", batch_size=BATCH, shuffle=True, seed=3)
        exp.loaders["train"] = loader
        reference = MislabelTracker()
        latest = np.full(N, np.nan)
        last_pred = np.full(N, np.nan)
        seen = np.zeros(N)
        last_seen = np.full(N, -1.0)
        hist_ids: list[int] = []
        hist_steps: list[int] = []
        hist_values: list[float] = []
        curve: list[tuple[int, float]] = []
        for _ in range(EPOCHS):
            for xb, ids, yb in loader:
                step = exp.step
                loss, logits, preds = _batch_values(xb, yb, step)
                exp.record("loss", loss, ids, targets=yb, preds=preds, is_loss=True)
                exp.step_end()
                idx = np.asarray(ids)
                seen[idx] += 1
                last_seen[idx] = step
                ok = np.isfinite(loss)
                latest[idx[ok]] = loss[ok]
                last_pred[idx] = preds
                hist_ids += idx.tolist()
                hist_steps += [step] * len(idx)
                hist_values += loss.tolist()
                curve.append((step, float(loss[ok].mean())))
                reference.update(idx, loss, targets=yb, step=step, preds=preds)
        exp.recorder.drain()

        table = exp.table
        rows = table.rows("train", [str(i) for i in range(N)], create=False)
        assert rows.tolist() == list(range(N))  # registration order
        np.testing.assert_array_equal(table.numeric["loss"][rows], latest)
        np.testing.assert_array_equal(table.numeric["label"][rows], y.astype(np.float64))
        np.testing.assert_array_equal(table.numeric["prediction"][rows], last_pred)
        np.testing.assert_array_equal(table.seen_count[rows], seen)
        np.testing.assert_array_equal(table.last_seen_step[rows], last_seen)
        # compact where exact: whole-number counts, steps and class labels as float32; these float64
        # losses are not float32 values, so their column was widened (equal above either way)
        assert table.seen_count.dtype == table.last_seen_step.dtype == table.numeric["label"].dtype == np.float32
        assert table.numeric["loss"].dtype == np.float64

        h_rows, h_steps, h_values, h_codes = exp.history.arrays("loss")
        assert h_rows.tolist() == hist_ids and h_steps.tolist() == hist_steps
        np.testing.assert_array_equal(h_values, np.asarray(hist_values))
        assert h_values.dtype == np.float64
        assert {exp.history.branches[c] for c in h_codes.tolist()} == {exp.branch}
        points = exp.history.curve("loss", split="train")
        assert [(p.step, p.value) for p in points] == curve

        assert [s for s in store.curves] == [("loss", "train", exp.branch, st, v) for st, v in curve]
        assert sum((h[2] for h in store.history), []) == [str(i) for i in hist_ids]
        assert sum((h[3] for h in store.history), []) == hist_steps
        np.testing.assert_array_equal(np.concatenate([h[4] for h in store.history]), np.asarray(hist_values))
        assert [p[1] for p in store.predictions] and all(p[0] == "train" for p in store.predictions)

        frame = exp.frame()
        expected = reference.columns(N)
        for name, column in expected.items():
            np.testing.assert_array_equal(frame.columns[name][:N], column, err_msg=name)
    finally:
        exp.shutdown()


def test_live_mislabel_columns_equal_a_full_recompute() -> None:
    """``live_columns`` recomputes only the rows updated since its last call: same values as
    ``columns`` after every batch (repeated rows, NaN losses, logits, growth of the table)."""
    rng = np.random.default_rng(11)
    tracker = MislabelTracker()
    n = 40
    for step in range(30):
        if step == 12:
            n = 90  # more rows registered: capacity grows
        if step % 7:
            tracker.reserve(n)
        rows = rng.integers(0, n, 16)
        losses = rng.exponential(1.0, 16)
        losses[rng.random(16) < 0.1] = np.nan
        logits = rng.normal(size=(16, 3)) if step % 3 else None
        tracker.update(rows, losses, logits=logits, targets=rng.integers(0, 3, 16), step=step)
        if step % 4 == 0:
            continue  # several updates between two reads
        live, full = tracker.live_columns(n + 5), tracker.columns(n + 5)
        assert list(live) == list(full)
        for name in full:
            np.testing.assert_array_equal(live[name], full[name], err_msg=f"{name} at step {step}")


def test_cached_suggestion_columns_equal_a_full_recompute() -> None:
    """After new observations only the touched rows of ``suggested_label`` are recomputed: same
    values as ``columns`` (logits and votes, repeated rows, labels given, rows never seen)."""
    from weightslab.suggest import SuggestionTracker

    rng = np.random.default_rng(12)
    tracker = SuggestionTracker()
    n = 60
    labels = rng.integers(0, 4, n).astype(np.float64)
    for step in range(25):
        rows = rng.integers(0, n - 10, 12)
        if step % 3:
            tracker.update(rows, logits=rng.normal(size=(12, 4)), targets=labels[rows].astype(np.int64))
        else:
            tracker.update(rows, preds=rng.integers(0, 4, 12), targets=labels[rows].astype(np.int64))
        if step % 4 == 0:
            continue
        cached, full = tracker.cached_columns(n, labels, 0), tracker.columns(n, labels)
        for name in full:
            np.testing.assert_array_equal(cached[name], full[name], err_msg=f"{name} at step {step}")


def test_table_split_codes_equal_factorizing_the_split_column() -> None:
    """The table keeps split codes per row; a query frame gets them instead of factorizing."""
    from weightslab.query.frame import factorize
    from weightslab.table import SampleTable

    table = SampleTable()
    table.rows("val", ["a", "b"])
    table.rows("train", [str(i) for i in range(5)])
    table.rows("test", ["a"])
    table.rows("val", ["c", "a"])
    frame = table.frame()
    names, codes = frame.split_codes()
    want_names, want_codes = factorize(frame.split.copy())
    assert names == want_names == ["test", "train", "val"]
    np.testing.assert_array_equal(codes, want_codes)
    empty_names, empty_codes = SampleTable().frame().split_codes()
    assert empty_names == [] and len(empty_codes) == 0


def test_split_codes_are_the_tables_own_when_names_are_sorted_and_made_on_first_use_otherwise() -> None:
    from weightslab.table import SampleTable

    table = SampleTable()
    table.rows("test", ["a", "b"])
    table.rows("train", ["a", "c", "d"])
    names, codes = table.frame().split_codes()
    assert names == ["test", "train"] and codes.tolist() == [0, 0, 1, 1, 1]
    assert np.shares_memory(codes, table.split_code)  # no copy of 4 bytes a row per frame
    table.rows("dev", ["z"])  # "dev" sorts first: codes renumbered
    frame = table.frame()
    assert frame.split_names() == ["dev", "test", "train"]
    assert callable(frame._cache["split_codes"][1][1])  # names alone made no codes
    assert frame.split_codes()[1].tolist() == [1, 1, 2, 2, 2, 0]


def test_integer_ids_resolve_to_the_same_rows_as_their_text(tmp_path) -> None:
    """Batches of integer ids (vectorised lookup) name the same rows as their decimal text, new
    ids are added in batch order, and the recorded values land on those rows."""
    from weightslab.table import SampleTable

    text, ints = SampleTable(), SampleTable()
    batches = [np.array([3, 1, 2]), np.array([2, 9, -4, 9, 5_000_000_000, 0]), np.array([0, 3, 7])]
    for batch in batches:
        want = text.rows("train", [str(v) for v in batch.tolist()])
        np.testing.assert_array_equal(ints.int_rows("train", batch), want)
    assert ints.sample_id[: ints.n].tolist() == text.sample_id[: text.n].tolist()

    exp = Experiment(kwargs={"root_log_dir": tmp_path}, environ=ENV)
    exp.start()
    try:
        exp.register_samples("train", ["0", "1", "2"])
        exp.record("loss", np.array([0.5, 1.5, 2.5]), np.array([2, 7, 0]), split="train")
        exp.recorder.drain()
        rows = exp.table.rows("train", ["2", "7", "0"], create=False)
        np.testing.assert_array_equal(exp.table.numeric["loss"][rows], [0.5, 1.5, 2.5])
    finally:
        exp.shutdown()


def test_split_codes_widen_past_127_splits_and_every_reader_counts_them() -> None:
    """Split codes are one byte a row while there are at most 127 splits; the 128th widens them,
    and queries, groups and histograms by split still see every split (int8 arithmetic would wrap)."""
    from weightslab.query import histogram_by_value, run_query
    from weightslab.table import SampleTable

    table = SampleTable()
    names = [f"s{i:03d}" for i in range(130)]
    for i, name in enumerate(names):
        rows = table.rows(name, [f"a{i}", f"b{i}"])
        table.set_signal("loss", rows, np.array([float(i), float(i)]))
        if i == 99:  # int8 codes, some past 63: twice a code no longer fits int8
            assert table.split_code.dtype == np.int8
            hist = histogram_by_value(table.frame(), "loss", 100, range=(0, 100))
            assert {k: int(v.sum()) for k, v in hist.by_split.items()} == {n: 2 for n in names[:100]}
    assert table.split_code.dtype == np.int32
    frame = table.frame()
    got_names, codes = frame.split_codes()
    assert got_names == names and codes.tolist() == [i // 2 for i in range(260)]
    assert run_query(frame, "split == 's129'").indices.tolist() == [258, 259]
    groups = run_query(frame, {"group": {"by": ["split"], "aggregates": [{"fn": "count"}]}, "page": {"limit": 200}})
    assert [(g.key["split"], g.values["count"]) for g in groups.groups or []] == [(n, 2) for n in names]
    hist = histogram_by_value(frame, "loss", 130, range=(0, 130))
    assert {k: int(v.sum()) for k, v in hist.by_split.items()} == {n: 2 for n in names}


def test_grouping_by_narrow_split_codes_keeps_the_missing_slot_past_127_names() -> None:
    """Codes given as int8 (128 names, a row with no split): the missing-split slot is 128, which
    int8 cannot hold; grouping must give what the spelled-out split column gives."""
    from weightslab.query import Frame, run_query

    names = [f"s{i:03d}" for i in range(128)]
    split = np.array([*names, None], dtype=object)
    n = len(split)
    ids = np.array([str(i) for i in range(n)], dtype=object)
    reference = Frame(ids, split, np.zeros(n, bool), {"x": np.arange(n, dtype=float)})
    narrow = Frame(ids, split, np.zeros(n, bool), {"x": np.arange(n, dtype=float)})
    narrow.set_split_codes(names, np.array([*range(128), -1], dtype=np.int8))
    query = {"group": {"by": ["split"]}, "page": {"limit": 200}}
    got = [g.to_dict() for g in run_query(narrow, query).groups or []]
    assert got == [g.to_dict() for g in run_query(reference, query).groups or []] and len(got) == 129
