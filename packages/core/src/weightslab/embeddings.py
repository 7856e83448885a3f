"""Opt-in per-sample embeddings of a watched model, and the data-quality columns built on them.

``wl.watch_or_edit(model, flag="model", embeddings=True)`` (or a module name) installs one
forward pre-hook: the input of the model's last layer (or of the named module), flattened and
reduced by a fixed random projection to at most :data:`DIM` float32 values, is attributed to
the batch the watched loader yielded last on this thread. The hook only queues a host copy
(as the recorder does for losses); a daemon thread folds the queue into a row-indexed matrix
and, about once per epoch of captures (or on :meth:`EmbeddingIndex.refresh`), computes
``outlier_score``, ``uniqueness``, ``near_duplicate_of``/``near_duplicate_split`` and
``duplicate_group`` (:mod:`weightslab.neighbours`) holding no experiment lock.
Embeddings persist through the sample store's per-sample arrays (``append_predictions`` under
the split name ``embedding:<split>``) and are reloaded at start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

from weightslab._torch import resolve_host, to_host_async

if TYPE_CHECKING:
    from weightslab.experiment import Experiment
    from weightslab.neighbours import Quality
    from weightslab.store import StoredState

log = logging.getLogger("weightslab.embeddings")

DIM = 64  # stored dimensions at most (random projection above)
STORE_PREFIX = "embedding:"  # split name prefix of embeddings in the sample store
MAX_LEAKAGE_EXAMPLES = 5  # in status; operations.data_quality lists every pair
COLUMNS = ("outlier_score", "uniqueness", "near_duplicate_of", "near_duplicate_split", "duplicate_group")


class EmbeddingIndex:
    """Embeddings of one watched model (row-indexed like the sample table) and their scores."""

    def __init__(self, experiment: Experiment, *, interval: float = 0.5) -> None:
        self.experiment = experiment
        self.interval = interval
        self.module_name = ""
        self.dim = 0
        self._queue: deque[tuple[np.ndarray, Any, int]] = deque()
        self._lock = threading.Lock()  # the matrix; never held while the experiment's locks are taken
        self.values = np.zeros((0, DIM), dtype=np.float32)
        self.steps = np.zeros(0, dtype=np.int64)  # -1: no embedding yet
        self._dirty = np.zeros(0, dtype=bool)  # not yet persisted
        self._projection: tuple[int, Any] | None = None  # (input dims, matrix or None)
        self._handle: Any = None
        self._captures = 0  # rows captured since the last computation started
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._requested = threading.Event()
        self._done = threading.Condition()
        self._computations = 0
        self._thread: threading.Thread | None = None
        self._columns: dict[str, np.ndarray] = {}
        self._columns_key: tuple[int, int] | None = None
        self._quality: Quality | None = None
        self._rows = np.zeros(0, dtype=np.int64)  # table rows of the analysed matrix
        self._ids = np.zeros(0, dtype=object)  # their sample ids and splits
        self._splits = np.zeros(0, dtype=object)
        self._info: dict[str, Any] = {"state": "waiting", "rows": 0, "computed_at_step": None, "seconds": None,
                                      "exact": None, "threshold": None, "error": None}
        self._leakage: dict[str, Any] = {"pairs": 0, "examples": []}

    # -- capture ------------------------------------------------------------
    def attach(self, model: Any, module: str | bool) -> None:
        """Hook the input of ``module`` (a name of ``model.named_modules()``) or, for ``True``, of the
        last leaf module that has parameters (the output layer, for the usual models)."""
        named = dict(model.named_modules()) if hasattr(model, "named_modules") else None
        if named is None:
            raise TypeError(f"embeddings=: the model ({type(model).__name__}) is not a torch.nn.Module")
        if module is True:
            leaves = [n for n, m in named.items() if n and not any(True for _ in m.children())
                      and any(True for _ in m.parameters(recurse=False))]
            if not leaves:
                raise ValueError("embeddings=True: the model has no layer with parameters; "
                                 "name the module to capture (embeddings='<module name>')")
            module = leaves[-1]
        if not isinstance(module, str) or not module or module not in named:
            shown = ", ".join(repr(n) for n in list(named)[:30] if n)
            raise ValueError(f"embeddings={module!r}: expected True or the name of a module of the model; "
                             f"known: {shown}")
        if self._handle is not None:
            self._handle.remove()
        self.module_name = module
        self._handle = named[module].register_forward_pre_hook(self._hook)

    def _hook(self, module: Any, args: tuple[Any, ...]) -> None:
        try:
            self._capture(args)
        except Exception as exc:  # never break the user's forward pass
            self.experiment.warn_once(f"embeddings:{type(exc).__name__}", "capturing embeddings of module %r "
                                      "failed (%s); training goes on without them", self.module_name, exc)

    def _capture(self, args: tuple[Any, ...]) -> None:
        batch = getattr(self.experiment._local, "batch", None)
        if batch is None or not args:
            return
        x, rows = args[0], batch
        if getattr(x, "ndim", 0) < 1 or x.shape[0] != len(rows):
            return  # not the batch the loader yielded (another call of the model)
        self.experiment._local.batch = None  # one capture per yielded batch
        feats = x.detach().reshape(len(rows), -1).float()
        if self._projection is None or self._projection[0] != feats.shape[1]:
            self._projection = (feats.shape[1], _projection(feats.shape[1], feats.device))
        if self._projection[1] is not None:
            feats = feats @ self._projection[1]
        self._queue.append((rows, to_host_async(feats), self.experiment.step))
        self._captures += len(rows)
        if len(self._queue) >= 256:
            self._wake.set()

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    # -- storage ------------------------------------------------------------
    def _grow(self, needed: int, dim: int) -> None:
        if self.dim == 0:
            self.dim = dim
            self.values = np.zeros((0, dim), dtype=np.float32)
        if dim != self.dim:
            raise ValueError(f"embedding of {dim} values, expected {self.dim}")
        cap = len(self.steps)
        if needed <= cap:
            return
        new = max(1024, cap)
        while new < needed:
            new *= 2
        values = np.zeros((new, self.dim), dtype=np.float32)
        values[:cap] = self.values
        steps = np.full(new, -1, dtype=np.int64)
        steps[:cap] = self.steps
        dirty = np.zeros(new, dtype=bool)
        dirty[:cap] = self._dirty
        self.values, self.steps, self._dirty = values, steps, dirty

    def put(self, rows: np.ndarray, values: np.ndarray, step: int | np.ndarray, *, dirty: bool = True) -> None:
        values = np.asarray(values, dtype=np.float32).reshape(len(rows), -1)
        with self._lock:
            if len(rows):
                self._grow(int(rows.max()) + 1, values.shape[1])
            self.values[rows] = values
            self.steps[rows] = step
            self._dirty[rows] = dirty

    def fold(self) -> None:
        """Move queued captures into the matrix (any thread; cheap when nothing is queued)."""
        while self._queue:
            rows, host, step = self._queue.popleft()
            try:
                self.put(rows, resolve_host(host), step)
            except Exception:
                log.exception("an embedding batch could not be stored; it was dropped")

    def embedded_rows(self) -> np.ndarray:
        self.fold()
        with self._lock:
            return np.flatnonzero(self.steps >= 0)

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, embeddings)``: a copy of every stored embedding."""
        self.fold()
        with self._lock:
            rows = np.flatnonzero(self.steps >= 0)
            return rows, self.values[rows].copy()

    # -- persistence --------------------------------------------------------
    def persist(self) -> None:
        """Write embeddings not yet persisted to the sample store (one block per split)."""
        exp = self.experiment
        if not getattr(exp.store, "persistent", False):
            return
        self.fold()
        with self._lock:
            rows = np.flatnonzero(self._dirty)
            values, steps = self.values[rows].copy(), self.steps[rows].copy()
            self._dirty[rows] = False
        if not len(rows):
            return
        with exp.data_lock:
            splits, ids = exp.table.split[rows].astype(str), exp.table.sample_id[rows].copy()
        for split in np.unique(splits):
            m = splits == split
            try:  # the store keeps one step per block: the latest capture of these rows
                exp.store.append_predictions(STORE_PREFIX + str(split), ids[m], int(steps[m].max()), values[m])
            except Exception as exc:
                exp.warn_once(f"store:embeddings:{type(exc).__name__}", "the sample store rejected embeddings "
                              "(%s); they stay in memory", exc)

    def restore(self, state: StoredState) -> None:
        """Reload the latest stored embedding of every sample."""
        exp = self.experiment
        for key, block in state.predictions.items():
            if not key.startswith(STORE_PREFIX):
                continue
            value = np.asarray(block["value"])
            if value.ndim != 2 or value.dtype.kind != "f" or not len(value):
                continue
            order = np.argsort(np.asarray(block["step"]), kind="stable")  # later blocks win
            ids = [str(s) for s in np.asarray(block["sample_id"])[order]]
            with exp.data_lock:
                rows = exp.table.rows(key[len(STORE_PREFIX):], ids)
            try:
                self.put(rows, value[order], np.asarray(block["step"])[order], dirty=False)
            except ValueError as exc:  # stored with another dimension (a different module)
                log.warning("stored embeddings of split %s ignored: %s", key[len(STORE_PREFIX):], exc)

    # -- background computation ----------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="weightslab-embeddings", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        self._thread = None
        self.detach()
        try:
            self.persist()
        except Exception:
            log.exception("persisting embeddings failed")

    def refresh(self, *, wait: bool = False, timeout: float = 60.0) -> bool:
        """Ask for a computation now; with ``wait``, block until one that started after this call
        ends (False when ``timeout`` passed first)."""
        with self._done:  # atomic with compute()'s start: a running pass predates this request
            target = self._computations + (2 if self._info["state"] == "computing" else 1)
            self._requested.set()
        self._wake.set()
        if self._thread is None:
            self.start()
        if not wait:
            return True
        with self._done:
            return self._done.wait_for(lambda: self._computations >= target, timeout)

    def _due(self) -> bool:
        if self._requested.is_set():
            return True
        with self._lock:
            n = int(np.count_nonzero(self.steps >= 0))
        if n < 2 or self._captures < n:  # about one epoch of captures since the last computation
            return False
        last = self._info["seconds"] or 0.0
        finished = self._info.get("finished_at") or 0.0
        return time.monotonic() - finished >= 2 * last  # at most a third of a core on average

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.fold()
                if self._due():
                    self.compute()
            except Exception:
                log.exception("computing embedding scores failed")

    def compute(self) -> None:
        """Neighbours and scores of every embedded sample (the calling thread; no experiment lock
        held during the search)."""
        from weightslab.neighbours import analyse

        exp = self.experiment
        with self._done:
            self._requested.clear()
            self._info.update(state="computing", started_step=exp.step, error=None)
        self._captures = 0
        started = time.monotonic()
        try:
            rows, x = self.matrix()
            with exp.data_lock:
                splits = exp.table.split[rows].astype(str)
                ids = exp.table.sample_id[rows].copy()
            codes = np.unique(splits, return_inverse=True)[1].reshape(-1)
            quality = analyse(x, codes)
            leakage = _leakage(quality, splits, ids)
            with self._lock:
                self._quality, self._rows = quality, rows
                self._ids, self._splits = ids, splits
                self._columns_key = None
                self._leakage = leakage
            self._info.update(state="ready", rows=len(rows), computed_at_step=self._info["started_step"],
                              exact=quality.exact, threshold=round(quality.threshold, 6),
                              near_duplicate_pairs=len(quality.pairs))
        except Exception as exc:
            self._info.update(state="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self._info.update(seconds=round(time.monotonic() - started, 3), finished_at=time.monotonic())
            with self._done:
                self._computations += 1
                self._done.notify_all()
        self.persist()

    # -- reads --------------------------------------------------------------
    def columns(self, n: int) -> dict[str, np.ndarray]:
        """The score columns over the first ``n`` table rows (NaN / None where not computed)."""
        with self._lock:
            q, rows = self._quality, self._rows
            key = (n, id(q))
            if key == self._columns_key:
                return self._columns
            if q is None:
                return {}
            keep = rows < n
            r = rows[keep]
            out: dict[str, np.ndarray] = {}
            for name in ("outlier_score", "uniqueness"):
                col = np.full(n, np.nan)
                col[r] = getattr(q, name)[keep]
                out[name] = col
            near_of = np.full(n, None, dtype=object)
            near_split = np.full(n, None, dtype=object)
            has = keep & (q.near_duplicate_of >= 0)
            near_of[rows[has]] = self._ids[q.near_duplicate_of[has]]
            near_split[rows[has]] = self._splits[q.near_duplicate_of[has]]
            group = np.full(n, np.nan)
            ing = keep & (q.duplicate_group >= 0)
            group[rows[ing]] = rows[q.duplicate_group[ing]]  # the group's first table row
            out.update(near_duplicate_of=near_of, near_duplicate_split=near_split, duplicate_group=group)
            self._columns, self._columns_key = out, key
            return out

    def status(self) -> dict[str, Any]:
        info = {k: v for k, v in self._info.items() if k not in ("finished_at", "started_step")}
        with self._lock:
            captured = int(np.count_nonzero(self.steps >= 0))
            leakage = dict(self._leakage)
        return {"module": self.module_name, "dim": self.dim, "embedded": captured, **info, "leakage": leakage}


def _projection(d_in: int, device: Any) -> Any:
    """A fixed (seeded) Gaussian projection to :data:`DIM` dims, or None when ``d_in <= DIM``.

    Seeded, so embeddings captured after a restart live in the same space as the stored ones.
    """
    if d_in <= DIM:
        return None
    import torch

    gen = torch.Generator().manual_seed(0)
    return (torch.randn(d_in, DIM, generator=gen) / DIM ** 0.5).to(device)


def _leakage(q: Quality, splits: np.ndarray, ids: np.ndarray) -> dict[str, Any]:
    """Near-duplicate pairs whose two samples are in different splits."""
    if not len(q.pairs):
        return {"pairs": 0, "examples": []}
    a, b = q.pairs[:, 0], q.pairs[:, 1]
    cross = splits[a] != splits[b]
    a, b = a[cross], b[cross]
    counts: dict[str, int] = {}
    for sa, sb in zip(splits[a].tolist(), splits[b].tolist(), strict=True):
        key = " / ".join(sorted((sa, sb)))
        counts[key] = counts.get(key, 0) + 1
    examples = [{"a": {"split": str(splits[i]), "sample_id": str(ids[i])},
                 "b": {"split": str(splits[j]), "sample_id": str(ids[j])}}
                for i, j in zip(a[:MAX_LEAKAGE_EXAMPLES].tolist(), b[:MAX_LEAKAGE_EXAMPLES].tolist(), strict=True)]
    return {"pairs": int(len(a)), "by_splits": counts, "examples": examples}


def cross_split_pairs(index: EmbeddingIndex) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """Every cross-split near-duplicate pair of the last computation, ``((split, id), (split, id))``."""
    with index._lock:
        q = index._quality
        if q is None or not len(q.pairs):
            return []
        splits, ids = index._splits, index._ids
        return [((str(splits[i]), str(ids[i])), (str(splits[j]), str(ids[j])))
                for i, j in q.pairs.tolist() if splits[i] != splits[j]]


def restore_embeddings(experiment: Experiment, state: StoredState) -> None:
    """Called by the experiment's start: embeddings stored by an earlier run come back (kept on the
    experiment until a model is watched with ``embeddings=``)."""
    if any(k.startswith(STORE_PREFIX) for k in state.predictions):
        experiment.stored_embeddings = state
        index = getattr(experiment, "embeddings", None)
        if index is not None:
            index.restore(state)


def enable(experiment: Experiment, model: Any, module: str | bool) -> EmbeddingIndex:
    """Install (or move) the capture hook on ``model``; one index per experiment."""
    index = getattr(experiment, "embeddings", None) or EmbeddingIndex(experiment)
    index.attach(model, module)  # a bad module name raises before anything is registered
    if experiment.embeddings is None:
        stored = getattr(experiment, "stored_embeddings", None)
        if stored is not None:
            index.restore(stored)
        experiment.embeddings = index
    index.start()
    experiment.services["embeddings"] = index  # stopped (and persisted) at shutdown
    return index
