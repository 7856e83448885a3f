"""Nearest neighbours and the scores built on them (weightslab.neighbours): numpy only."""

from __future__ import annotations

import numpy as np
import pytest
from weightslab.neighbours import analyse, knn


def _brute(x, k):
    d = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, 1), idx


def test_exact_search_matches_brute_force():
    x = np.random.default_rng(1).normal(size=(300, 12)).astype(np.float32)
    nb = knn(x, 7, block=64)  # several blocks
    dist, idx = _brute(x, 7)
    assert nb.exact
    np.testing.assert_allclose(nb.dist, dist, rtol=1e-5)
    assert (nb.idx == idx).mean() > 0.99  # ties aside


def test_tiny_inputs_and_bad_shapes():
    nb = knn(np.zeros((1, 4), np.float32), 5)
    assert nb.dist.shape == (1, 0)
    nb = knn(np.array([[0.0], [3.0], [1.0]], np.float32), 5)
    assert nb.idx.tolist() == [[2, 1], [2, 0], [0, 1]]
    with pytest.raises(ValueError, match="2-D"):
        knn(np.zeros(5), 2)
    q = analyse(np.zeros((1, 3), np.float32), np.zeros(1))
    assert np.isnan(q.outlier_score).all() and q.near_duplicate_of.tolist() == [-1]


def _clustered(rng, n, d=32, clusters=40, intrinsic=6):
    centers = rng.normal(size=(clusters, d)) * 4
    basis = rng.normal(size=(clusters, intrinsic, d))
    lab = rng.integers(0, clusters, n)
    z = rng.normal(size=(n, intrinsic))
    return (centers[lab] + np.einsum("ni,nid->nd", z, basis[lab]) + 0.05 * rng.normal(size=(n, d))).astype(np.float32)


def test_forest_finds_planted_duplicates_and_most_neighbours():
    rng = np.random.default_rng(2)
    x = _clustered(rng, 6000)
    src = rng.choice(5000, 60, replace=False)
    x[5000 + np.arange(60)] = x[src] + 1e-3 * rng.normal(size=(60, x.shape[1]))
    approx = knn(x, 10, exact_limit=1000, leaf_size=256)
    exact = knn(x, 10)
    assert not approx.exact and exact.exact
    assert (approx.idx[5000:5060, 0] == src).all()  # every planted copy found
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx.idx, exact.idx, strict=True)])
    assert recall > 0.6
    assert (approx.dist >= exact.dist - 1e-4).all()  # never closer than the true neighbours


def test_duplicates_groups_and_outliers():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    x[390:395] = 0  # five identical inputs: one duplicate group
    x[395:] = rng.normal(size=(5, 8)) * 8  # far away: outliers
    x[100] = x[50] + 1e-4  # a near-duplicate pair
    split = np.where(np.arange(400) % 4 == 0, 1, 0)
    q = analyse(x, split)
    assert q.near_duplicate_of[100] == 50 and q.near_duplicate_of[50] == 100
    assert q.duplicate_group[50] == q.duplicate_group[100] == 50
    assert set(q.duplicate_group[390:395].tolist()) == {390}
    assert (q.duplicate_group[:50] == -1).all()
    assert {50, 100} <= set(q.pairs.ravel().tolist())
    top = np.argsort(-q.outlier_score)[:5]
    assert set(top.tolist()) == set(range(395, 400))
    # normalised within each split: a robust z-score (median 0)
    for code in (0, 1):
        assert abs(np.median(q.outlier_score[split == code])) < 1e-9
    assert q.uniqueness[100] < 0.1 and q.uniqueness[50] < 0.1 and q.uniqueness[395:].min() > 0.9


def test_a_group_of_identical_bad_inputs_still_scores_as_outliers():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 8)).astype(np.float32)
    x[480:] = 6.0  # twenty identical corrupted inputs, far from the data
    q = analyse(x, np.zeros(500))
    assert q.outlier_score[480:].min() > np.sort(q.outlier_score[:480])[-3]
