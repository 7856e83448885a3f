"""``suggested_label``: the class a training run believes, from its whole prediction trajectory.

:class:`SuggestionTracker` keeps, per sample-table row, a maturity-weighted running sum of the
softmax probabilities the watched training loss saw (one-hot prediction votes when only hard
predictions are known). Columns (float64, NaN where the row was never observed):

``suggested_label``             argmax of the weighted mean probabilities (a class index).
``suggested_label_confidence``  that class's weighted mean probability, in [0, 1].
``suggestion_differs``          1 where the suggestion differs from the row's current label,
                                0 where it agrees (NaN when either is unknown).

Why the whole trajectory and not the latest prediction: a network memorises wrong labels late
in training, after which its latest prediction just repeats the wrong label; the mean over
every observation keeps what the run believed before it memorised. Observations made by a
barely trained network say little, so each batch is weighted by ``max(min_weight, 1 - G/G_max)``
(``G``: an EMA of the batch-mean cross-entropy, ``G_max`` its running maximum), as
:class:`~weightslab.mislabel.MislabelTracker` weights its ``suspected_mislabel`` score.

Storage is ``rows x classes`` float32; beyond ``max_cells`` (or when the width of the logits
changes) suggestions stop, with one warning. Host numpy only: this module never imports torch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import numpy as np

log = logging.getLogger("weightslab.suggest")

COLUMN_NAMES = ("suggested_label", "suggested_label_confidence", "suggestion_differs")
_SLICE_ROWS = 1 << 16  # rows per slice when a whole column is computed
MAX_CELLS = 1 << 26  # 256 MiB of float32: e.g. 1M rows x 64 classes, 100k rows x 640 classes


class SuggestionTracker:
    def __init__(self, *, maturity_halflife: float = 4.0, min_weight: float = 0.05,
                 max_cells: int = MAX_CELLS) -> None:
        self._g_decay = float(0.5 ** (1.0 / maturity_halflife))
        self._min_weight = float(min_weight)
        self._max_cells = int(max_cells)
        self._g_ema = float("nan")
        self._g_max = float("nan")
        self._lock = threading.Lock()
        self._p = np.zeros((0, 0), np.float32)  # weighted sum of probabilities per row and class
        self._w = np.zeros(0, np.float32)  # sum of weights per row (float32, as the sums in _p are)
        self.n_classes = 0  # the logits' width once seen; 0 = unknown
        self.disabled = ""  # why suggestions stopped ("" = active)
        self.updates = 0
        # cached_columns(): only the columns a reader asked for, for (rows, labels version), and the
        # rows updated since (None: too many, recompute). Nothing is tracked while none is cached.
        self._cache_key: tuple[int, int] | None = None
        self._cache: dict[str, np.ndarray] = {}
        self._touched: list[np.ndarray] | None = []
        self._reserved = 0  # rows to allocate at the first update (the table's size)
        self._touched_n = 0

    # ------------------------------------------------------------------ update
    def update(self, rows: np.ndarray, *, logits: np.ndarray | None = None, targets: np.ndarray | None = None,
               preds: np.ndarray | None = None) -> None:
        """One training batch: ``logits`` (batch, classes), else hard ``preds`` (batch,) as votes.
        ``targets`` (integer class indices) only set the batch's weight. Anything else is skipped."""
        if self.disabled:
            return
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        batch = rows.shape[0]
        if batch == 0:
            return
        probs = _probabilities(logits, batch)
        from_logits = probs is not None
        if probs is None:
            probs = _votes(preds, batch)
            if probs is None:
                return
        ok = np.isfinite(probs).all(axis=1)
        if not ok.any():
            return
        width = probs.shape[1]
        with self._lock:
            if from_logits and self.n_classes and width != self.n_classes:
                self._stop(f"the logits' width changed from {self.n_classes} to {width}")
                return
            weight = self._maturity(probs, targets, ok)
            if not self._ensure(int(rows.max()) + 1, width):
                return
            if from_logits:  # votes only give a lower bound (classes never predicted are not seen)
                self.n_classes = width
            r = rows[ok]
            p = probs[ok].astype(np.float32, copy=False)
            if p.shape[1] < self._p.shape[1]:
                p = np.pad(p, ((0, 0), (0, self._p.shape[1] - p.shape[1])))
            if _unique(r):  # the usual batch: gather, add, scatter (several times faster than np.add.at)
                rows_p = np.take(self._p, r, axis=0)  # a 2-D ``_p[r] += ...`` costs twice as much
                rows_p += np.float32(weight) * p
                self._p[r] = rows_p
                self._w[r] += np.float32(weight)
            else:  # a row that repeats in the batch adds each occurrence (np.add.at is unbuffered)
                np.add.at(self._p, r, np.float32(weight) * p)
                np.add.at(self._w, r, np.float32(weight))
            self.updates += 1
            if self._touched is not None and self._cache:  # rows cached_columns recomputes (all past a table's worth)
                self._touched.append(r)
                self._touched_n += r.size
                if self._touched_n > max(len(self._w), 1):
                    self._touched = None

    def _maturity(self, probs: np.ndarray, targets: np.ndarray | None, ok: np.ndarray) -> float:
        """Update the overall loss level with this batch; the weight of its observations."""
        level = float("nan")
        t = None if targets is None else np.asarray(targets).reshape(-1)
        if t is not None and t.shape[0] == probs.shape[0] and t.dtype.kind in "iuf":
            valid = ok & np.isfinite(t) & (t >= 0) & (t < probs.shape[1]) & (np.mod(t, 1) == 0)
            if valid.any():
                idx = np.flatnonzero(valid)
                p_true = probs[idx, t[idx].astype(np.int64)]
                level = float(-np.log(np.clip(p_true, 1e-12, 1.0)).mean())
        if np.isfinite(level):
            self._g_ema = level if np.isnan(self._g_ema) else self._g_decay * self._g_ema + (1 - self._g_decay) * level
            self._g_max = self._g_ema if np.isnan(self._g_max) else max(self._g_max, self._g_ema)
        if not self._g_max > 0:
            return 1.0
        return min(1.0, max(self._min_weight, 1.0 - self._g_ema / self._g_max))

    def _ensure(self, n_rows: int, width: int) -> bool:
        rows_cap, cls = self._p.shape
        new_cls = max(cls, width)
        new_rows = rows_cap if n_rows <= rows_cap else max(n_rows, 2 * rows_cap if rows_cap else 0,
                                                           self._reserved, 64)
        if new_rows * new_cls > self._max_cells:
            self._stop(f"{n_rows} rows x {new_cls} classes exceed {self._max_cells} cells")
            return False
        if (new_rows, new_cls) != (rows_cap, cls):
            p = np.zeros((new_rows, new_cls), np.float32)
            p[:rows_cap, :cls] = self._p
            w = np.zeros(new_rows, np.float32)
            w[:rows_cap] = self._w
            self._p, self._w = p, w
        return True

    def reserve(self, n_rows: int) -> None:
        """Allocate for the table's ``n_rows`` at the first update (the width comes with the logits),
        not by doubling as shuffled batches reveal larger rows."""
        with self._lock:
            self._reserved = max(self._reserved, int(n_rows))

    def _stop(self, why: str) -> None:
        self.disabled = why
        self._p = np.zeros((0, 0), np.float32)
        self._w = np.zeros(0, np.float32)
        log.warning("suggested_label is off for this run: %s", why)

    # ------------------------------------------------------------------ columns
    def columns(self, n_rows: int, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The suggestion columns for rows ``0..n_rows-1``; ``labels``: the table's current labels."""
        with self._lock:
            return self._compute_all(n_rows, labels, COLUMN_NAMES)

    def cached_columns(self, n_rows: int, labels: np.ndarray | None, labels_version: int,
                       names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """:meth:`columns` ``names`` (default all), kept: a column is computed the first time it is
        asked for; after new observations alone only the rows they touched are recomputed (O(batch),
        not O(table): the first query after a training step stays cheap on 1M rows); after a label
        correction or new rows, the whole columns. The cached arrays are updated in place."""
        wanted = _names(names)
        with self._lock:
            touched, self._touched, self._touched_n = self._touched, [], 0
            cache = self._cache
            if cache and (self._cache_key != (n_rows, labels_version) or touched is None):
                self._cache = cache = self._compute_all(n_rows, labels, tuple(cache))
            elif cache and touched:
                rows = np.concatenate(touched)  # a repeated row is recomputed to the same values
                rows = rows[rows < n_rows]
                if len(rows):
                    for name, values in self._compute(rows, _labels_at(labels, rows), tuple(cache)).items():
                        cache[name][rows] = values
            missing = tuple(name for name in wanted if name not in cache)
            if missing:
                cache.update(self._compute_all(n_rows, labels, missing))
            self._cache_key = (n_rows, labels_version)
            return {name: cache[name] for name in wanted}

    def columns_at(self, rows: np.ndarray, labels: np.ndarray | None,
                   names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """The values :meth:`columns` gives ``rows`` (a page), computed for those rows only."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        with self._lock:
            return self._compute(rows, _labels_at(labels, rows), _names(names))

    def _compute_all(self, n_rows: int, labels: np.ndarray | None, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Columns ``names`` of rows ``0..n_rows-1``, a slice at a time so that the temporaries stay
        small (caller holds the lock)."""
        out = {name: np.full(n_rows, np.nan) for name in names}
        k = min(n_rows, self._w.shape[0])
        for start in range(0, k, _SLICE_ROWS):
            sel = slice(start, min(k, start + _SLICE_ROWS))
            for name, values in self._compute(sel, _labels_at(labels, sel), names).items():
                out[name][sel] = values
        return out

    def _compute(self, sel: slice | np.ndarray, labels: np.ndarray | None,
                 names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Columns ``names`` of rows ``sel`` (a slice inside the storage, or any row indices) with
        ``labels`` the labels of those rows; caller holds the lock."""
        if isinstance(sel, slice):
            w = self._w[sel]
        else:
            inside = (sel >= 0) & (sel < self._w.shape[0])
            w = np.zeros(sel.size, np.float32)
            w[inside] = self._w[sel[inside]]
        out = {name: np.full(w.size, np.nan) for name in names}
        seen = np.flatnonzero(w > 0)
        if seen.size == 0 or self._p.shape[1] == 0:
            return out
        p = self._p[sel][seen] if isinstance(sel, slice) else self._p[sel[seen]]
        best = p.argmax(axis=1)
        if "suggested_label" in out:
            out["suggested_label"][seen] = best
        if "suggested_label_confidence" in out:
            conf = p[np.arange(seen.size), best].astype(np.float64) / w[seen]
            out["suggested_label_confidence"][seen] = np.clip(conf, 0.0, 1.0)
        if "suggestion_differs" in out and labels is not None:
            lab = np.asarray(labels[seen], dtype=np.float64)
            known = np.isfinite(lab)
            out["suggestion_differs"][seen[known]] = (best[known] != lab[known]).astype(np.float64)
        return out

    def suggestion(self, rows: np.ndarray) -> np.ndarray:
        """Suggested class per row (-1 where none)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.full(rows.shape[0], -1, np.int64)
        with self._lock:
            inside = rows < self._w.shape[0]
            if not inside.any() or self._p.shape[1] == 0:
                return out
            r = rows[inside]
            has = self._w[r] > 0
            best = np.where(has, self._p[r].argmax(axis=1), -1)
        out[inside] = best
        return out


def _names(names: Iterable[str] | None) -> tuple[str, ...]:
    if names is None:
        return COLUMN_NAMES
    wanted = tuple(names)
    unknown = [name for name in wanted if name not in COLUMN_NAMES]
    if unknown:
        raise ValueError(f"unknown suggestion column(s) {unknown}: expected some of {list(COLUMN_NAMES)}")
    return wanted


def _labels_at(labels: np.ndarray | None, sel: slice | np.ndarray) -> np.ndarray | None:
    """The labels of rows ``sel`` (NaN for rows beyond the labels given)."""
    if labels is None:
        return None
    if isinstance(sel, slice):
        out = np.asarray(labels[sel])
        want = sel.stop - sel.start
        return out if len(out) == want else np.concatenate([out.astype(np.float64), np.full(want - len(out), np.nan)])
    inside = sel < len(labels)
    if inside.all():
        return np.asarray(labels[sel])
    picked = np.full(sel.size, np.nan)
    picked[inside] = labels[sel[inside]]
    return picked


def _is_logits(logits: np.ndarray | None, batch: int) -> bool:
    z = None if logits is None else np.asarray(logits)
    return z is not None and z.ndim == 2 and z.shape[0] == batch and z.shape[1] >= 2 and z.dtype.kind in "iuf"


def _unique(rows: np.ndarray) -> bool:
    """Whether no row repeats (a sort: ~7x faster than ``np.unique`` on a batch of 1,024)."""
    ordered = np.sort(rows)
    return bool((ordered[1:] != ordered[:-1]).all())


def _probabilities(logits: np.ndarray | None, batch: int) -> np.ndarray | None:
    if not _is_logits(logits, batch):
        return None
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _votes(preds: np.ndarray | None, batch: int) -> np.ndarray | None:
    """Hard predictions as one-hot votes (integer classes only)."""
    if preds is None:
        return None
    p = np.asarray(preds)
    if p.ndim != 1 or p.shape[0] != batch or p.dtype.kind not in "iuf":
        return None
    ok = np.isfinite(p) & (p >= 0) & (np.mod(np.where(np.isfinite(p), p, 0), 1) == 0) & (p < 1 << 16)
    if not ok.any():
        return None
    cls = np.where(ok, p, 0).astype(np.int64)
    out = np.zeros((batch, int(cls.max()) + 1), np.float64)
    out[np.flatnonzero(ok), cls[ok]] = 1.0
    out[~ok] = np.nan
    return out
