"""Per-sample mislabel and outlier signals, computed online from what the loss wrapper sees.

:class:`MislabelTracker` keeps O(1) running state per sample-table row and is updated once
per batch with that batch's per-sample losses and, when available, logits and (possibly
noisy) targets. No extra training run and no second model are needed. Every signal is a
plain float64 column (NaN where the row was never observed) for the query engine:

``loss_mean``           mean of all finite losses observed for the row.
``loss_last``           the latest finite loss.
``loss_trend``          slope of the loss per observation over recent observations: an
                        exponentially weighted least-squares fit (half-life
                        ``trend_halflife`` observations). Negative = being learned.
``margin``              latest margin: logit of the assigned label minus the largest other
                        logit (needs 2-D logits and integer class targets).
``aum``                 area under the margin: mean margin over all observations
                        (Pleiss et al., 2020, "Identifying Mislabeled Data using the Area
                        Under the Margin Ranking").
``forgetting_events``   number of correct -> incorrect transitions between consecutive
                        observations (Toneva et al., 2019); needs logits (or ``preds``)
                        and targets.
``n_observations``      number of finite-loss observations.
``last_step``           ``step`` of the latest update that touched the row (if given).
``suspected_mislabel``  ranking score, higher = more suspicious: a maturity-weighted mean
                        over all observations of the assigned label's cross-entropy,
                        recomputed from the logits when they are usable, else the loss seen
                        (see :meth:`MislabelTracker.columns`).

Use one tracker per stream of batches (e.g. per split): the score's weights follow that
stream's overall loss level.

Inputs are numpy arrays already on the host; this module never imports torch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from weightslab.narrow import FLOAT32_WHOLE, fits_float32

__all__ = ["MislabelTracker", "auroc", "precision_at_k"]

_UNKNOWN = np.int8(-1)
_COUNT_MAX = int(np.iinfo(np.uint16).max)  # per-row counters are uint16 until a row could pass it
_SLICE_ROWS = 1 << 16  # rows per slice when a whole column is computed


class MislabelTracker:
    """Online per-row loss/margin/forgetting statistics and a mislabel ranking score.

    ``update`` is O(batch) and fully vectorised (no Python loop over samples; a batch that
    repeats a row is applied as if its occurrences came one after the other, in order).
    Storage (about 72 bytes per row) grows geometrically as larger row indices appear;
    ``columns`` is O(n_rows). ``update`` and ``columns`` may be called from different threads.
    """

    COLUMN_NAMES: tuple[str, ...] = (
        "loss_mean",
        "loss_last",
        "loss_trend",
        "margin",
        "aum",
        "forgetting_events",
        "n_observations",
        "last_step",
        "suspected_mislabel",
    )

    def __init__(
        self,
        capacity: int = 0,
        *,
        trend_halflife: float = 4.0,
        maturity_halflife: float = 4.0,
        min_weight: float = 0.05,
    ) -> None:
        """``capacity``: rows to allocate up front. ``trend_halflife``: half-life, in a
        row's observations, of the weights of the ``loss_trend`` fit. ``maturity_halflife``
        (in batches) and ``min_weight``: see :meth:`columns`."""
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        if not trend_halflife > 0:
            raise ValueError(f"trend_halflife must be > 0, got {trend_halflife}")
        if not maturity_halflife > 0:
            raise ValueError(f"maturity_halflife must be > 0, got {maturity_halflife}")
        if not 0 < min_weight <= 1:
            raise ValueError(f"min_weight must be in (0, 1], got {min_weight}")
        self._decay = float(0.5 ** (1.0 / trend_halflife))
        self._g_decay = float(0.5 ** (1.0 / maturity_halflife))
        self._min_weight = float(min_weight)
        self._g_ema = float("nan")  # EMA of the batch-mean suspicion (overall loss level)
        self._g_max = float("nan")  # its running maximum
        self._lock = threading.Lock()
        self._cap = 0
        # Loss statistics. The counters (_n, _m_n, _forget) are uint16 while no row can have
        # passed 65,535 observations (_count_bound, the most any row can have), then int32.
        self._count_bound = 0
        self._n = np.zeros(0, np.uint16)
        self._loss_sum = np.zeros(0, np.float64)
        self._loss_last = np.zeros(0, np.float32)  # float32 while every loss is one (see _keep)
        # Exponentially weighted least-squares sums for the trend, with x the observation index
        # relative to the latest one (0, -1, -2, ...) and weights decay**age: sum(w*y) and
        # sum(w*x*y). sum(w), sum(w*x), sum(w*x*x) depend on the count alone (see columns).
        self._sy = np.zeros(0, np.float64)
        self._sxy = np.zeros(0, np.float64)
        # Margin statistics.
        self._m_n = np.zeros(0, np.uint16)
        self._m_sum = np.zeros(0, np.float64)
        self._m_last = np.zeros(0, np.float64)
        # Correctness / forgetting (a row was judged at least once where _prev_correct >= 0).
        self._prev_correct = np.zeros(0, np.int8)
        self._forget = np.zeros(0, np.uint16)
        self._last_step = np.zeros(0, np.float32)  # whole steps: exact up to 2**24, widened past it
        # Suspicion score: maturity-weighted sum of per-observation cross-entropy from
        # logits (else the loss), and the sum of the weights.
        self._s_w = np.zeros(0, np.float64)
        self._s_sum = np.zeros(0, np.float64)
        self._seen = np.zeros(0, np.int8)  # 1 once a row was in update(), valid or not
        # live_columns(): only the columns a reader asked for (8 bytes a row each), and the rows
        # updated since they were computed (None = too many: recompute them all). Nothing is
        # tracked while no column is live.
        self._live: dict[str, np.ndarray] = {}
        self._live_k = 0
        self._touched: list[np.ndarray] | None = []
        self._touched_n = 0
        if capacity:
            self._grow(capacity)

    # ------------------------------------------------------------------ storage
    _FILL: dict[str, Any] = {
        "_n": 0, "_loss_sum": 0.0, "_loss_last": np.nan,
        "_sy": 0.0, "_sxy": 0.0,
        "_m_n": 0, "_m_sum": 0.0, "_m_last": np.nan,
        "_prev_correct": _UNKNOWN, "_forget": 0, "_last_step": np.nan,
        "_s_w": 0.0, "_s_sum": 0.0, "_seen": 0,
    }

    @property
    def capacity(self) -> int:
        return self._cap

    def reserve(self, rows: int) -> None:
        """Room for ``rows`` rows, allocated exactly (the sample table's size, known up front):
        growing by doubling as shuffled batches reveal larger rows could leave half of it unused."""
        with self._lock:
            self._grow(rows, exact=True)

    def _grow(self, needed: int, *, exact: bool = False) -> None:
        """Per-row state: one block per dtype, a row's fields side by side, each field a column view.

        A shuffled batch updates every field of 1,024 scattered rows: with one array per field
        that is a cache miss per field and row (15 a row); side by side, a row's float fields share
        two cache lines and its counters one.
        """
        if needed <= self._cap:
            return
        new_cap = needed if exact else max(needed, 2 * self._cap, 64)
        by_dtype: dict[np.dtype[Any], list[str]] = {}
        for name in self._FILL:
            by_dtype.setdefault(getattr(self, name).dtype, []).append(name)
        for dtype, names in by_dtype.items():
            block = np.empty((new_cap, len(names)), dtype=dtype)
            for j, name in enumerate(names):
                old = getattr(self, name)
                block[: self._cap, j] = old[: self._cap]
                block[self._cap:, j] = self._FILL[name]
                setattr(self, name, block[:, j])
        self._cap = new_cap

    def _keep(self, name: str, values: np.ndarray) -> None:
        """Widen the float32 field ``name`` to float64 before it takes a value float32 cannot hold
        exactly (a float64 loss, a step past 2**24): stored values are always the ones given."""
        field = getattr(self, name)
        if field.dtype == np.float32 and not fits_float32(values):
            setattr(self, name, field.astype(np.float64))

    # ------------------------------------------------------------------ update
    def update(
        self,
        rows: np.ndarray,
        losses: np.ndarray,
        *,
        logits: np.ndarray | None = None,
        targets: np.ndarray | None = None,
        step: int | None = None,
        preds: np.ndarray | None = None,
    ) -> None:
        """Record one batch.

        ``rows``: int row indices (batch,). ``losses``: per-sample losses (batch,) or
        (batch, ...) which is averaged per sample; non-finite losses are ignored for the
        loss statistics of that sample. ``logits``: (batch, classes) scores; with integer
        ``targets`` (batch,) in ``[0, classes)`` they give the margin and correctness.
        Anything else (multi-label / one-hot targets, a single output column, more than
        two dimensions, out-of-range targets such as an ignore index, non-finite logits)
        skips the margin for the affected samples without error. ``preds``: optional hard
        class predictions (batch,), used for correctness when no usable logits are given.
        """
        rows = np.asarray(rows)
        if rows.ndim != 1:
            raise ValueError(f"rows must be 1-D, got shape {rows.shape}")
        batch = rows.shape[0]
        if batch == 0:
            return
        if not np.issubdtype(rows.dtype, np.integer):
            if np.issubdtype(rows.dtype, np.floating) and np.all(np.mod(rows, 1) == 0):
                rows = rows.astype(np.int64)
            else:
                raise TypeError(f"rows must be integer row indices, got dtype {rows.dtype}")
        rows = rows.astype(np.int64, copy=False)
        if rows.min() < 0:
            raise ValueError("rows must be non-negative")

        loss = np.asarray(losses)
        exact32 = loss.dtype == np.float32 and loss.ndim == 1  # kept as given: nothing to check
        loss = loss.astype(np.float64, copy=False)
        if loss.ndim == 0 or loss.shape[0] != batch:
            raise ValueError(f"losses must have length {batch} along axis 0, got shape {loss.shape}")
        if loss.ndim > 1:
            loss = loss.reshape(batch, -1).mean(axis=1)  # a NaN anywhere -> ignored observation

        margin, xent, correct = self._logit_stats(batch, logits, targets, preds)
        suspicion = np.where(np.isfinite(xent), xent, loss)

        with self._lock:
            self._grow(int(rows.max()) + 1)
            self._note_touched(rows)
            if step is not None:
                if not (float(step).is_integer() and -FLOAT32_WHOLE <= step <= FLOAT32_WHOLE):
                    self._keep("_last_step", np.asarray([float(step)]))
                self._last_step[rows] = float(step)
            weight = self._maturity(suspicion)
            rank = _occurrence_rank(rows)
            self._count_bound += 1 if rank is None else int(rank.max()) + 1
            if self._count_bound > _COUNT_MAX and self._n.dtype == np.uint16:
                for name in ("_n", "_m_n", "_forget"):
                    setattr(self, name, getattr(self, name).astype(np.int32))
            if rank is None:
                self._apply(rows, loss, margin, correct, suspicion, weight, exact32)
            else:  # a row repeats: apply occurrences in order, one unique set at a time
                for r in range(int(rank.max()) + 1):
                    sel = rank == r
                    self._apply(rows[sel], loss[sel], margin[sel], correct[sel], suspicion[sel], weight, exact32)

    def _maturity(self, suspicion: np.ndarray) -> float:
        """Update the overall loss level with this batch; the weight of its observations."""
        finite = suspicion[np.isfinite(suspicion)]
        if finite.size:
            level = float(finite.mean())
            if np.isnan(self._g_ema):
                self._g_ema = level
            else:
                self._g_ema = self._g_decay * self._g_ema + (1.0 - self._g_decay) * level
            self._g_max = self._g_ema if np.isnan(self._g_max) else max(self._g_max, self._g_ema)
        if not self._g_max > 0:  # no level yet, or a loss that is not positive: equal weights
            return 1.0
        return min(1.0, max(self._min_weight, 1.0 - self._g_ema / self._g_max))

    @staticmethod
    def _logit_stats(
        batch: int, logits: np.ndarray | None, targets: np.ndarray | None, preds: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-sample margin and cross-entropy (NaN = none), correctness (-1 unknown, 0, 1)."""
        margin = np.full(batch, np.nan)
        xent = np.full(batch, np.nan)
        correct = np.full(batch, _UNKNOWN, dtype=np.int8)
        tgt, tgt_ok = _class_targets(targets, batch)
        if tgt is None:
            return margin, xent, correct
        z = None if logits is None else np.asarray(logits)
        if z is not None and z.ndim == 2 and z.shape[0] == batch and z.shape[1] >= 2 \
                and np.issubdtype(z.dtype, np.number):
            z = z.astype(np.float64, copy=False)
            n_cls = z.shape[1]
            ok = tgt_ok & (tgt < n_cls) & np.isfinite(z).all(axis=1)
            if ok.any():
                idx = np.flatnonzero(ok)
                zs = z[idx]
                ts = tgt[idx]
                ar = np.arange(idx.size)
                z_true = zs[ar, ts]
                other = zs.copy()
                other[ar, ts] = -np.inf
                z_max = zs.max(axis=1)
                margin[idx] = z_true - other.max(axis=1)
                xent[idx] = z_max + np.log(np.exp(zs - z_max[:, None]).sum(axis=1)) - z_true
                # argmax == target, with ties broken like argmax (first index wins).
                correct[idx] = (zs.argmax(axis=1) == ts).astype(np.int8)
            return margin, xent, correct
        if preds is not None:
            p = np.asarray(preds)
            if p.ndim == 1 and p.shape[0] == batch and np.issubdtype(p.dtype, np.number):
                p_ok = np.isfinite(p) if np.issubdtype(p.dtype, np.floating) else np.ones(batch, bool)
                ok = tgt_ok & p_ok
                correct[ok] = (p[ok] == tgt[ok]).astype(np.int8)
        return margin, xent, correct

    def _apply(self, rows: np.ndarray, loss: np.ndarray, margin: np.ndarray, correct: np.ndarray,
               suspicion: np.ndarray, weight: float, exact32: bool = False) -> None:
        """Apply one batch whose rows are unique (caller holds the lock)."""
        self._seen[rows] = 1
        ok = np.isfinite(loss)
        if ok.any():
            r = rows[ok]
            y = loss[ok]
            self._n[r] += 1
            self._loss_sum[r] += y
            if not exact32:
                self._keep("_loss_last", y)
            self._loss_last[r] = y
            # Existing points move one step into the past (x -> x - 1) and decay; add (0, y).
            sy = self._sy[r]
            self._sxy[r] = self._decay * (self._sxy[r] - sy)
            self._sy[r] = self._decay * sy + y
        ok = np.isfinite(margin)
        if ok.any():
            r = rows[ok]
            m = margin[ok]
            self._m_n[r] += 1
            self._m_sum[r] += m
            self._m_last[r] = m
        ok = correct >= 0
        if ok.any():
            r = rows[ok]
            c = correct[ok]
            self._forget[r] += (self._prev_correct[r] == 1) & (c == 0)
            self._prev_correct[r] = c
        ok = np.isfinite(suspicion)
        if ok.any():
            r = rows[ok]
            self._s_w[r] += weight
            self._s_sum[r] += weight * suspicion[ok]

    # ------------------------------------------------------------------ columns
    def _weight_sums(self, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """sum(w), sum(w*x), sum(w*x*x) over x = 0, -1, ..., -(n-1) with w = decay**-x."""
        # Terms beyond this age are below 1e-20 of the newest one: no effect in float64.
        horizon = int(np.ceil(np.log(1e-20) / np.log(self._decay)))
        top = int(min(int(n.max(initial=0)), horizon))
        age = np.arange(top, dtype=np.float64)
        w = self._decay ** age
        table = [np.concatenate(([0.0], np.cumsum(v))) for v in (w, -age * w, age * age * w)]
        idx = np.minimum(n, top)
        return table[0][idx], table[1][idx], table[2][idx]

    def columns(self, n_rows: int) -> dict[str, np.ndarray]:
        """All signals as float64 arrays of length ``n_rows`` (NaN where never observed).

        ``suspected_mislabel`` (higher = more suspicious) is a weighted mean over *all* of a
        row's observations of the cross-entropy of its assigned label, ``logsumexp(z) - z[y]``,
        recomputed from the logits when they are usable (otherwise the loss the wrapper saw
        is used for that observation): an area under the loss curve. A mislabelled sample
        contradicts what the rest of its class teaches, so the network fits it late, if at
        all, and its loss stays high for most of training.

        * Cumulative, so robust to late memorisation: once the noise is memorised every
          loss is near zero, which adds about the same to every row and keeps the earlier
          separation, whereas the latest loss (``loss_last``) or margin lose much of it.
        * Loss rather than margin: the mean margin (``aum``) also accumulates, but
          memorised samples go on to grow large positive margins that wash their early
          negative ones out, while a loss is bounded below. Recomputing it from the logits
          makes the score independent of class weights, label smoothing, focal terms, etc.
        * Maturity weights: an observation made by a barely trained network says little,
          and an equal-weight mean lags the raw loss early in training. Each batch's
          observations are weighted by ``max(min_weight, 1 - G / G_max)``, where ``G`` is an
          EMA (half-life ``maturity_halflife`` batches) of the batch-mean cross-entropy and
          ``G_max`` its running maximum: about ``min_weight`` at the start, close to 1 once
          the loss has dropped, so later observations count about equally.
        """
        if n_rows < 0:
            raise ValueError(f"n_rows must be >= 0, got {n_rows}")
        with self._lock:
            k = min(n_rows, self._cap)
            out = self._compute_all(k, self.COLUMN_NAMES)
        return self._padded(out, n_rows, k)

    def live_columns(self, n_rows: int, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """:meth:`columns` ``names`` (default all), kept up to date in place: a column is computed
        the first time it is asked for, then only the rows ``update`` touched since the previous
        call are recomputed (O(rows touched), not O(table)), so the first query after new losses
        stays cheap on a large table. A column nobody asked for costs no memory; ``names=()``
        only brings the live ones up to date. Same values as :meth:`columns`; the arrays are live
        (later calls overwrite them, as a table frame's views)."""
        if n_rows < 0:
            raise ValueError(f"n_rows must be >= 0, got {n_rows}")
        wanted = self._names(names)
        with self._lock:
            k = min(n_rows, self._cap)
            live = self._live
            touched = self._touched
            self._touched, self._touched_n = [], 0
            if live and (self._live_k != k or touched is None):
                self._live = live = self._compute_all(k, tuple(live))
            elif live and touched:
                rows = np.concatenate(touched)  # a repeated row is recomputed to the same values
                rows = rows[rows < k]
                if len(rows):
                    for name, values in self._compute(rows, tuple(live)).items():
                        live[name][rows] = values
            missing = tuple(name for name in wanted if name not in live)
            if missing:
                live.update(self._compute_all(k, missing))
            self._live_k = k
            out = {name: live[name] for name in wanted}
        return self._padded(out, n_rows, k, wanted)

    def columns_at(self, rows: np.ndarray, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """The values :meth:`columns` gives ``rows`` (a page), computed for those rows only."""
        wanted = self._names(names)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = {name: np.full(rows.size, np.nan) for name in wanted}
        with self._lock:
            inside = np.flatnonzero((rows >= 0) & (rows < self._cap))
            if inside.size:
                for name, values in self._compute(rows[inside], wanted).items():
                    out[name][inside] = values
        return out

    def _names(self, names: Iterable[str] | None) -> tuple[str, ...]:
        if names is None:
            return self.COLUMN_NAMES
        wanted = tuple(names)
        unknown = [name for name in wanted if name not in self.COLUMN_NAMES]
        if unknown:
            raise ValueError(f"unknown mislabel column(s) {unknown}: expected some of {list(self.COLUMN_NAMES)}")
        return wanted

    def _note_touched(self, rows: np.ndarray) -> None:
        """Rows ``live_columns`` must recompute (caller holds the lock)."""
        if self._touched is None or not self._live:
            return
        self._touched.append(rows)
        self._touched_n += len(rows)
        if self._touched_n > max(self._live_k, self._cap):  # more than a full pass: recompute all instead
            self._touched = None

    def _compute_all(self, k: int, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Columns ``names`` of rows ``0..k-1``, a slice at a time: the temporaries stay small
        (a million rows at once would need several 8 MB arrays per column)."""
        out = {name: np.empty(k) for name in names}
        for start in range(0, k, _SLICE_ROWS):
            stop = min(k, start + _SLICE_ROWS)
            for name, values in self._compute(slice(start, stop), names).items():
                out[name][start:stop] = values
        return out

    def _compute(self, sel: slice | np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Columns ``names`` of rows ``sel`` (a slice, or row indices); caller holds the lock."""
        want = set(names)
        out: dict[str, np.ndarray] = {}
        n = self._n[sel]
        with np.errstate(invalid="ignore", divide="ignore"):
            if "loss_mean" in want:
                out["loss_mean"] = np.where(n > 0, self._loss_sum[sel] / n, np.nan)
            if "aum" in want:
                m_n = self._m_n[sel]
                out["aum"] = np.where(m_n > 0, self._m_sum[sel] / m_n, np.nan)
            if "suspected_mislabel" in want:
                s_w = self._s_w[sel]
                out["suspected_mislabel"] = np.where(s_w > 0, self._s_sum[sel] / s_w, np.nan)
            if "loss_trend" in want:
                s0, sx, sxx = self._weight_sums(n)
                den = s0 * sxx - sx * sx
                num = s0 * self._sxy[sel] - sx * self._sy[sel]
                out["loss_trend"] = np.where((n >= 2) & (den > 1e-12), num / den, np.nan)
        if "forgetting_events" in want:
            judged = self._prev_correct[sel] >= 0
            out["forgetting_events"] = np.where(judged, self._forget[sel].astype(np.float64), np.nan)
        if "n_observations" in want:
            out["n_observations"] = np.where(self._seen[sel] > 0, n.astype(np.float64), np.nan)
        for name, field in (("loss_last", self._loss_last), ("margin", self._m_last), ("last_step", self._last_step)):
            if name in want:  # a slice of a column view: copied; fancy indexing already copied
                out[name] = field[sel].copy() if isinstance(sel, slice) else field[sel]
        return {name: out[name] for name in names}

    def _padded(self, out: dict[str, np.ndarray], n_rows: int, k: int,
                names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        if n_rows > k:
            pad = np.full(n_rows - k, np.nan)
            out = {name: np.concatenate([col, pad]) for name, col in out.items()}
        return {name: out[name] for name in (self.COLUMN_NAMES if names is None else names)}


# ---------------------------------------------------------------------- helpers
def _occurrence_rank(rows: np.ndarray) -> np.ndarray | None:
    """For each position, how many earlier positions hold the same row; None if all unique."""
    order = np.argsort(rows, kind="stable")
    srt = rows[order]
    if srt.size < 2 or not (srt[1:] == srt[:-1]).any():
        return None
    pos = np.arange(srt.size)
    starts = np.r_[True, srt[1:] != srt[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, pos, 0))
    rank = np.empty(srt.size, np.int64)
    rank[order] = pos - group_start
    return rank


def _class_targets(targets: np.ndarray | None, batch: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Integer class targets (batch,) and a validity mask, or (None, _) if not class targets."""
    if targets is None:
        return None, np.zeros(batch, bool)
    t = np.asarray(targets)
    if t.ndim == 2 and t.shape == (batch, 1):
        t = t[:, 0]
    if t.dtype == np.bool_:
        t = t.astype(np.int64)
    if t.ndim != 1 or t.shape[0] != batch or not np.issubdtype(t.dtype, np.number) \
            or np.issubdtype(t.dtype, np.complexfloating):
        return None, np.zeros(batch, bool)
    if np.issubdtype(t.dtype, np.floating):
        ok = np.isfinite(t) & (np.abs(t) < 2.0**53)
        ok &= np.mod(np.where(ok, t, 0), 1) == 0
        ti = np.where(ok, t, -1).astype(np.int64)
    else:
        ti = t.astype(np.int64)
        ok = np.ones(batch, bool)
    ok &= ti >= 0
    return np.where(ok, ti, 0), ok


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (like scipy.stats.rankdata)."""
    _, inv, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg = ends - (counts - 1) / 2.0
    return avg[inv.reshape(-1)].astype(np.float64)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (True/1 = positive).

    Equals ``sklearn.metrics.roc_auc_score`` (ties count one half). Entries with a NaN
    score are dropped; returns NaN when one class is absent.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length: {s.shape[0]} != {y.shape[0]}")
    keep = ~np.isnan(s)
    s, y = s[keep], y[keep]
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def precision_at_k(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of positives among the ``k`` highest scores (NaN scores rank last).

    Ties at the cut-off are broken by position (earlier first), deterministically.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length: {s.shape[0]} != {y.shape[0]}")
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k}")
    k = min(k, s.size)
    if k == 0:
        return float("nan")
    key = np.where(np.isnan(s), -np.inf, s)
    order = np.argsort(-key, kind="stable")
    # NaN scores after every real score, including -inf ones.
    order = np.concatenate([order[~np.isnan(s[order])], order[np.isnan(s[order])]])
    return float(y[order[:k]].mean())
