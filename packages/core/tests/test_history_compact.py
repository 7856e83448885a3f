"""SignalHistory stores ~8 bytes per entry and reads back exactly what was appended (issue #19)."""

from __future__ import annotations

import threading

import numpy as np
from weightslab.history import SignalHistory

Ref = list[tuple[int, int, float, str]]


def _append(h: SignalHistory, ref: Ref, rows: list[int], step: int | list[int], values: list[float] | np.ndarray,
            branch: str) -> None:
    rows_a, vals_a = np.asarray(rows, dtype=np.int64), np.asarray(values, dtype=np.float64)
    steps_a = np.full(len(rows_a), step, np.int64) if isinstance(step, int) else np.asarray(step, np.int64)
    step_arg = step if isinstance(step, int) else steps_a
    ref += [(int(r), int(s), float(v), branch) for r, s, v in zip(rows_a, steps_a, vals_a, strict=True)]
    h.append("loss", rows_a, step_arg, vals_a, branch)


def _check(h: SignalHistory, ref: Ref) -> None:
    rows, steps, values, codes = h.arrays("loss")
    assert (rows.dtype, steps.dtype, values.dtype, codes.dtype) == (np.int64, np.int64, np.float64, np.int32)
    assert rows.tolist() == [r[0] for r in ref]
    assert steps.tolist() == [r[1] for r in ref]
    np.testing.assert_array_equal(values, np.asarray([r[2] for r in ref], dtype=np.float64))
    assert [h.branches[c] for c in codes.tolist()] == [r[3] for r in ref]
    for row in {r[0] for r in ref} | {7, 2**40}:
        t_steps, t_values, t_branches = h.trajectory("loss", row)
        mine = [r for r in ref if r[0] == row]
        assert t_steps.dtype == np.int64 and t_values.dtype == np.float64
        assert t_steps.tolist() == [r[1] for r in mine]
        np.testing.assert_array_equal(t_values, np.asarray([r[2] for r in mine], dtype=np.float64))
        assert t_branches == [r[3] for r in mine]


def _mixed_history(h: SignalHistory, ref: Ref) -> None:
    rng = np.random.default_rng(0)
    exact = rng.random(6).astype(np.float32).astype(np.float64)  # a float32 loss widened by the recorder
    _append(h, ref, [0, 1, 2, 3, 4, 5], 1, exact, "main")
    _append(h, ref, [0, 1, 2], 2, [0.1, 1 / 3, 1e300], "main")  # not exact in float32 (1e300 overflows it)
    _append(h, ref, [1, 2, 3], 3, [np.nan, np.inf, -np.inf], "fork")
    _append(h, ref, [5, 4, 3, 2], [4, 4, 6, 5], [1.5, -0.0, 2.5, np.nan], "main")  # a restored history
    _append(h, ref, [2**31, 2**40, 3], 7, [0.25, 0.5, 0.75], "fork")  # rows past int32
    _append(h, ref, [], 8, [], "main")  # an empty batch
    _append(h, ref, [0, 2**31 - 1], [9, 9], [1e-45, 3.0], "other")  # a float32 subnormal is exact


def test_reads_match_a_list_reference_before_and_after_consolidation() -> None:
    h = SignalHistory()
    ref: Ref = []
    _mixed_history(h, ref)
    _check(h, ref)  # consolidates
    _append(h, ref, [3, 4], 10, [0.5, 0.125], "main")  # appended after a consolidation
    _append(h, ref, [3, 4], 10, [0.5, 0.1], "main")  # same step and branch: one run when merged
    _check(h, ref)
    _check(h, ref)


def test_unknown_signal_and_row_read_empty_with_the_read_dtypes() -> None:
    h = SignalHistory()
    rows, steps, values, codes = h.arrays("nope")
    assert (rows.dtype, steps.dtype, values.dtype, codes.dtype) == (np.int64, np.int64, np.float64, np.int32)
    assert len(rows) == len(steps) == len(values) == len(codes) == 0
    h.append("loss", np.arange(3), 1, np.ones(3), "main")
    steps_t, values_t, branches = h.trajectory("loss", 99)
    assert steps_t.dtype == np.int64 and values_t.dtype == np.float64 and branches == []
    h.append("empty", np.zeros(0, np.int64), 1, np.zeros(0), "main")
    assert "empty" in h.signals()


def _stored(h: SignalHistory, signal: str = "loss") -> list[np.ndarray]:
    c = h._history[signal]
    return [*c.rows, *c.values, *c.run_steps, *c.run_codes, *c.run_lengths]


def test_storage_is_compact_at_about_8_bytes_per_entry() -> None:
    h = SignalHistory()
    rng = np.random.default_rng(1)
    for step in range(100):
        loss = rng.random(1024).astype(np.float32).astype(np.float64)
        h.append("loss", rng.permutation(1_000_000)[:1024], step, loss, "main")
    stored = sum(a.nbytes for a in _stored(h))
    assert stored == h.nbytes("loss") == h.nbytes()
    assert stored / (100 * 1024) <= 8.5


def test_a_read_does_not_upcast_the_storage() -> None:
    h = SignalHistory()
    for step in range(5):
        h.append("loss", np.arange(1000), step, np.full(1000, 0.5), "main")
    before = h.nbytes()
    h.arrays("loss")
    h.trajectory("loss", 3)
    c = h._history["loss"]
    assert [a.dtype for a in c.rows] == [np.int32] and [a.dtype for a in c.values] == [np.float32]
    assert h.nbytes() <= before


def test_mixed_dtypes_stay_in_separate_chunks() -> None:
    h = SignalHistory()
    h.append("loss", np.arange(4), 1, np.full(4, 0.5), "main")
    h.append("loss", np.arange(4), 2, np.full(4, 0.1), "main")
    h.append("loss", np.array([2**33]), 3, np.array([0.5]), "main")
    h.append("loss", np.arange(4), 4, np.full(4, 0.5), "main")
    h.arrays("loss")
    c = h._history["loss"]
    assert [a.dtype for a in c.rows] == [np.int32, np.int64, np.int32]
    assert [a.dtype for a in c.values] == [np.float32, np.float64, np.float32]
    assert c.run_steps[0].tolist() == [1, 2, 3, 4]


def test_steps_runs_are_split_where_the_step_changes() -> None:
    h = SignalHistory()
    h.append("loss", np.arange(6), np.array([3, 3, 4, 4, 4, 3]), np.zeros(6), "main")
    c = h._history["loss"]
    assert c.run_steps[0].tolist() == [3, 4, 3] and c.run_lengths[0].tolist() == [2, 3, 1]


def test_reads_return_copies_not_the_storage() -> None:
    h = SignalHistory()
    h.append("loss", np.arange(3), 1, np.ones(3), "main")
    rows, steps, values, _ = h.arrays("loss")
    rows[:] = 9
    values[:] = 9.0
    rows2, _, values2, _ = h.arrays("loss")
    assert rows2.tolist() == [0, 1, 2] and values2.tolist() == [1.0, 1.0, 1.0]


def test_before_read_runs_on_every_read() -> None:
    calls: list[int] = []
    h = SignalHistory(before_read=lambda: calls.append(1))
    h.append("loss", np.arange(3), 1, np.ones(3), "main")
    h.arrays("loss")
    h.trajectory("loss", 1)
    h.arrays("loss", sync=False)
    assert len(calls) == 2


def test_concurrent_appends_and_reads_stay_consistent() -> None:
    h = SignalHistory()
    done = threading.Event()
    consistent: list[bool] = []

    def read() -> None:
        while not done.is_set():
            rows, steps, values, codes = h.arrays("loss")
            same_length = len(rows) == len(steps) == len(values) == len(codes)
            consistent.append(same_length and bool((rows == steps).all()))  # every append writes row == step

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for step in range(300):
        h.append("loss", np.full(10, step), step, np.full(10, 0.5), "main")
    done.set()
    for t in threads:
        t.join()
    assert len(h.arrays("loss")[0]) == 3000
    assert all(consistent)
