"""Nearest neighbours of per-sample embeddings and the data-quality scores built on them.

Pure numpy (torch's ``topk`` is used when the training program already imported torch):
exact blocked search up to :data:`EXACT_LIMIT` rows, a random-projection forest above it
(no ANN dependency). :func:`analyse` turns neighbour lists into ``outlier_score``,
``uniqueness``, ``near_duplicate_of`` and ``duplicate_group``.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

import numpy as np

EXACT_LIMIT = 100_000  # rows; above this the forest is used (exact would be O(n^2))
K_OUTLIER = 10  # neighbours averaged by the outlier score
K_UNIQUE = 3  # neighbours averaged by uniqueness, nearest weighted most (as FiftyOne's uniqueness)
UNIQUE_WEIGHTS = np.array([0.6, 0.3, 0.1])
K_SEARCH = 32  # neighbours kept per row: the outlier score skips near-duplicate copies first
DUP_RATIO = 0.25  # near duplicate: closer than this fraction of the median 10th-neighbour distance


@dataclass(frozen=True)
class Neighbours:
    dist: np.ndarray  # (n, K) float32, ascending; inf where fewer than K neighbours exist
    idx: np.ndarray  # (n, K) int64; -1 where missing
    exact: bool


def knn(x: np.ndarray, k: int = K_SEARCH, *, exact_limit: int = EXACT_LIMIT, block: int = 1024,
        trees: int = 4, leaf_size: int = 512, seed: int = 0) -> Neighbours:
    """The ``k`` nearest other rows of every row of ``x`` (Euclidean)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (rows, dims), got shape {x.shape}")
    n = x.shape[0]
    k = max(0, min(int(k), n - 1))
    if n <= exact_limit:
        dist, idx = _exact(x, k, block)
        return Neighbours(dist, idx, exact=True)
    dist, idx = _forest(x, k, trees, leaf_size, seed)
    return Neighbours(dist, idx, exact=False)


def _smallest(d2: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` smallest values of each row (unordered)."""
    torch = sys.modules.get("torch")
    if torch is not None:  # topk is several times faster than argpartition on wide blocks
        return torch.from_numpy(d2).topk(k, dim=1, largest=False, sorted=False).indices.numpy()
    return np.argpartition(d2, k - 1, axis=1)[:, :k]


def _finish(x: np.ndarray, q: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances of the candidates (the matmul form loses precision for near-identical rows),
    sorted; candidates < 0 are missing. Chunked: the gathered rows are (rows, candidates, dims)."""
    n, width = cand.shape
    dist = np.empty((n, k), dtype=np.float32)
    idx = np.empty((n, k), dtype=np.int64)
    step = max(1, (1 << 22) // max(1, width * x.shape[1]))  # ~16 MB of gathered float32 per chunk
    for start in range(0, n, step):
        c = cand[start:start + step]
        diff = x[np.where(c < 0, 0, c)] - q[start:start + step, None, :]
        d = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        d[c < 0] = np.inf
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        dist[start:start + step], idx[start:start + step] = np.take_along_axis(d, order, 1), np.take_along_axis(c, order, 1)
    return dist, idx


def _candidates(x: np.ndarray, k: int, block: int) -> np.ndarray:
    """Indices (unordered) of the ``k`` nearest other rows, by blocked matrix products."""
    n = x.shape[0]
    cand = np.empty((n, k), dtype=np.int64)
    sq = (x * x).sum(axis=1)
    for start in range(0, n, block):
        q = x[start:start + block]
        d2 = q @ x.T  # |x|^2 - 2 q.x ranks like the squared distance (|q|^2 is constant per row)
        d2 *= -2.0
        d2 += sq[None, :]
        d2[np.arange(len(q)), np.arange(start, start + len(q))] = np.inf  # not its own neighbour
        cand[start:start + len(q)] = _smallest(d2, k)
    return cand


def _exact(x: np.ndarray, k: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    if k == 0:
        n = x.shape[0]
        return np.full((n, 0), np.inf, dtype=np.float32), np.full((n, 0), -1, dtype=np.int64)
    return _finish(x, x, _candidates(x, k, block), k)


def _leaves(x: np.ndarray, leaf_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One random-projection tree: split at the median along a random direction until small."""
    out: list[np.ndarray] = []
    stack = [np.arange(x.shape[0])]
    while stack:
        node = stack.pop()
        if len(node) <= leaf_size:
            out.append(node)
            continue
        proj = x[node] @ rng.standard_normal(x.shape[1], dtype=np.float32)
        half = len(node) // 2
        part = np.argpartition(proj, half)
        stack += [node[part[:half]], node[part[half:]]]
    return out


def _forest(x: np.ndarray, k: int, trees: int, leaf_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Approximate: exact search inside the leaves of several random-projection trees, merged.

    Near-identical rows almost always share a leaf (a median split rarely falls between them),
    so near-duplicates are found reliably; far neighbours are approximate.
    """
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    cand = np.full((n, trees * k), -1, dtype=np.int64)
    for t in range(trees):
        for leaf in _leaves(x, max(leaf_size, 2 * k + 2), rng):
            sub = x[leaf]
            kk = min(k, len(leaf) - 1)
            if kk > 0:
                cand[leaf, t * k:t * k + kk] = leaf[_candidates(sub, kk, 1024)]
    # drop candidates repeated across trees, then keep the k closest
    srt = np.sort(cand, axis=1)
    srt[:, 1:][srt[:, 1:] == srt[:, :-1]] = -1
    dist, idx = _finish(x, x, srt, k)
    idx[~np.isfinite(dist)] = -1
    return dist, idx


@dataclass(frozen=True)
class Quality:
    """Per-row scores (rows of the analysed matrix) and what they were computed with."""

    outlier_score: np.ndarray  # float64: robust z-score of the k-NN distance within the split
    uniqueness: np.ndarray  # float64 in [0, 1]: percentile of the weighted 3-NN distance within the split
    near_duplicate_of: np.ndarray  # int64 row of the nearest near-duplicate, -1 if none
    duplicate_group: np.ndarray  # int64 smallest row of the row's duplicate group, -1 if none
    pairs: np.ndarray  # (m, 2) int64 near-duplicate pairs i < j
    nearest_distance: np.ndarray  # float64 distance to the nearest other row (inf if none)
    threshold: float  # distance under which two rows are near-duplicates
    exact: bool


def analyse(x: np.ndarray, split: np.ndarray, *, dup_ratio: float = DUP_RATIO,
            exact_limit: int = EXACT_LIMIT, neighbours: Neighbours | None = None) -> Quality:
    """Scores for the rows of ``x``; ``split`` (one code per row) scopes the normalisation."""
    n = x.shape[0]
    split = np.asarray(split)
    nb = neighbours or knn(x, K_SEARCH, exact_limit=exact_limit)
    dist, idx = nb.dist.astype(np.float64), nb.idx
    K = dist.shape[1]
    if n < 2 or K == 0:
        empty = np.full(n, np.nan)
        none = np.full(n, -1, dtype=np.int64)
        return Quality(empty, empty.copy(), none, none.copy(), np.zeros((0, 2), np.int64), np.full(n, np.inf), 0.0,
                       nb.exact)
    kth = dist[:, min(K_OUTLIER, K) - 1]
    scale = float(np.median(kth[np.isfinite(kth)])) if np.isfinite(kth).any() else 0.0
    threshold = dup_ratio * scale
    is_dup = dist <= threshold  # a prefix of each row (distances ascend); exact copies always
    near = np.where(is_dup[:, 0], idx[:, 0], -1)

    # near-duplicate pairs and groups (connected components of the pair graph)
    a = np.repeat(np.arange(n), K)[is_dup.ravel()]
    b = idx.ravel()[is_dup.ravel()]
    pairs = np.unique(np.sort(np.stack([a, b], axis=1), axis=1), axis=0) if len(a) else np.zeros((0, 2), np.int64)
    group = np.full(n, -1, dtype=np.int64)
    if len(pairs):
        label = np.arange(n)
        while True:  # label propagation: each round merges along every edge
            low = np.minimum(label[pairs[:, 0]], label[pairs[:, 1]])
            new = label.copy()
            np.minimum.at(new, pairs[:, 0], low)
            np.minimum.at(new, pairs[:, 1], low)
            new = new[new]  # pointer jumping keeps the rounds logarithmic on long chains
            if np.array_equal(new, label):
                break
            label = new
        members = np.zeros(n, dtype=bool)
        members[pairs.ravel()] = True
        group[members] = label[members]

    # outlier: mean distance to the K_OUTLIER nearest rows that are not copies of this one, so a
    # cluster of identical bad inputs (blank images) still stands out
    first = is_dup.sum(axis=1)
    take = first[:, None] + np.arange(K_OUTLIER)[None, :]
    valid = take < K
    vals = np.take_along_axis(dist, np.minimum(take, K - 1), 1)
    vals[~valid | ~np.isfinite(vals)] = np.nan
    with warnings.catch_warnings():  # rows with no finite neighbour distance stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        raw = np.nanmean(np.where(valid.any(axis=1)[:, None], vals, dist[:, -1:]), axis=1)
        near3 = np.where(np.isfinite(dist[:, :K_UNIQUE]), dist[:, :K_UNIQUE], np.nan)
        w = UNIQUE_WEIGHTS[:near3.shape[1]]
        spread = np.nansum(near3 * w, axis=1) / np.nansum(np.where(np.isnan(near3), 0, w), axis=1)
    outlier = np.full(n, np.nan)
    unique = np.full(n, np.nan)
    for code in np.unique(split):
        m = split == code
        outlier[m] = _robust_z(raw[m])
        unique[m] = _percentile(spread[m])
    return Quality(outlier, unique, near, group, pairs.astype(np.int64), dist[:, 0].copy(), threshold, nb.exact)


def _robust_z(v: np.ndarray) -> np.ndarray:
    ok = np.isfinite(v)
    if not ok.any():
        return np.full(len(v), np.nan)
    med = float(np.median(v[ok]))
    mad = 1.4826 * float(np.median(np.abs(v[ok] - med)))
    mad = max(mad, 1e-6 * max(abs(med), 1e-12), 1e-12)
    return (v - med) / mad


def _percentile(v: np.ndarray) -> np.ndarray:
    out = np.full(len(v), np.nan)
    ok = np.flatnonzero(np.isfinite(v))
    if len(ok) == 1:
        out[ok] = 1.0
    elif len(ok) > 1:
        ranks = np.empty(len(ok))
        ranks[np.argsort(v[ok], kind="stable")] = np.arange(len(ok))
        out[ok] = ranks / (len(ok) - 1)
    return out
