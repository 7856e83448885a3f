"""Break-by-slices mean curves and extreme-preserving curve downsampling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from weightslab_data_cache.downsample import break_by_slices, downsample_curve, uniform_indices


def test_break_by_slices_matches_hand_computation() -> None:
    # samples 1..4, steps 0..2, two branches; selected = samples 1 and 3 ("3" as text)
    ids = np.array([1, 2, 3, 4] * 3 + [1, 3], dtype=object)
    steps = np.array([0] * 4 + [1] * 4 + [2] * 4 + [0, 0])
    values = np.array([1.0, 100, 3, 100, 2, 100, 4, 100, 5, 100, np.nan, 100, 10, 30])
    branches = np.array(["a"] * 12 + ["b", "b"], dtype=object)
    out = break_by_slices(ids, steps, values, branches, [1, "3"], max_points=0)
    assert set(out) == {"a", "b"}
    xs, ys = out["a"]
    assert xs.tolist() == [0, 1, 2]
    assert ys.tolist() == [(1 + 3) / 2, (2 + 4) / 2, 5.0]  # NaN is ignored, not averaged as 0
    assert out["b"][0].tolist() == [0] and out["b"][1].tolist() == [20.0]


def test_break_by_slices_caps_with_first_and_last() -> None:
    n = 1000
    ids = np.tile(np.arange(4), n)
    steps = np.repeat(np.arange(n), 4)
    values = steps.astype(float) * 2 + ids
    out = break_by_slices(ids, steps, values, "main", [0, 1], max_points=200)
    xs, ys = out["main"]
    assert xs.shape[0] == 200 and xs[0] == 0 and xs[-1] == n - 1
    np.testing.assert_allclose(ys, xs * 2 + 0.5)  # real means at real steps: no interpolation
    gaps = np.diff(xs)
    assert gaps.max() - gaps.min() <= 1  # evenly spaced
    assert break_by_slices(ids, steps, values, "main", [], max_points=200) == {}


def test_uniform_indices() -> None:
    assert uniform_indices(5, 0).tolist() == [0, 1, 2, 3, 4]
    assert uniform_indices(5, 10).tolist() == [0, 1, 2, 3, 4]
    assert uniform_indices(11, 3).tolist() == [0, 5, 10]
    assert uniform_indices(11, 1).tolist() == [10]


def test_downsample_keeps_extremes_and_endpoints() -> None:
    x = np.arange(10_000)
    y = np.sin(x / 50.0)
    y[1234] = 7.0
    y[8765] = -9.0
    xs, ys = downsample_curve(x, y, 100)
    assert xs.shape[0] <= 100
    assert xs[0] == 0 and xs[-1] == 9999
    assert 1234 in xs and 8765 in xs
    assert np.all(np.diff(xs) > 0)


def test_downsample_x_range_and_no_cap() -> None:
    x = np.arange(100)
    y = x.astype(float)
    xs, ys = downsample_curve(x, y, 0, x_range=(10, 20))
    assert xs.tolist() == list(range(10, 21))
    xs, _ = downsample_curve(x, y, 5, x_range=(None, 49))
    assert xs[0] == 0 and xs[-1] == 49 and len(xs) <= 5
    with pytest.raises(ValueError):
        downsample_curve(x, y[:5], 10)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6) | st.just(float("nan")), min_size=1, max_size=400), st.integers(0, 50))
def test_downsample_property(values: list[float], max_points: int) -> None:
    y = np.array(values)
    x = np.arange(y.shape[0])
    xs, ys = downsample_curve(x, y, max_points)
    cap = max(max_points, 4) if max_points else len(y)
    assert len(xs) <= max(cap, 0) or len(xs) == len(y)
    assert xs[0] == 0 and xs[-1] == len(y) - 1
    np.testing.assert_array_equal(ys, y[xs])  # real points only
    finite = y[np.isfinite(y)]
    if finite.size:
        assert np.nanmax(ys) == finite.max() and np.nanmin(ys) == finite.min()
