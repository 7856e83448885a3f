"""Off the hot path: the training thread only queues batch records; a daemon thread (or any
reader, synchronously) folds them into the table, history, store and mislabel tracker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from weightslab._torch import resolve_host
from weightslab.table import ids_to_list

if TYPE_CHECKING:
    from weightslab.experiment import Experiment

log = logging.getLogger("weightslab.recorder")
REFRESH_S = 0.5  # how often the drain brings the loss-derived columns up to date


@dataclass
class BatchRecord:
    name: str
    split: str
    step: int
    branch: str
    values: Any  # numpy, or a DeviceCopy still in flight
    rows: np.ndarray | None  # known when the ids came straight from a watched loader
    ids: Any  # the caller's ids, resolved to rows in the drain when rows is None
    preds: Any = None
    targets: Any = None
    logits: Any = None
    log_curve: bool = True
    is_loss: bool = False
    derived: bool = True
    chain: tuple[str, ...] = ()  # derived signals that produced this record (no cycles)


@dataclass
class SeenRecord:
    rows: np.ndarray
    step: int


class Recorder:
    def __init__(self, experiment: Experiment, interval: float = 0.05) -> None:
        self.experiment = experiment
        self.interval = interval
        self._queue: deque[BatchRecord | SeenRecord] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drain_lock = threading.Lock()
        # Derived-signal jobs: prepared under the data lock, run (user code) with no lock held.
        self._jobs: deque[Any] = deque()
        self._jobs_cond = threading.Condition()
        self._in_flight = 0
        self._local = threading.local()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.store_errors = 0
        self.loss_updates = 0  # lets readers cache columns derived from losses
        self._next_refresh = 0.0  # monotonic time of the next derived-columns refresh

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="weightslab-recorder", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.drain()

    def submit(self, record: BatchRecord | SeenRecord) -> None:
        self._queue.append(record)  # deque.append is atomic: no lock on the hot path
        if len(self._queue) >= 256:
            self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.drain()
            except Exception:
                self.errors += 1
                log.exception("recording a batch failed; the record was dropped")

    def drain(self) -> None:
        """Fold every queued record in (in order), then run derived signals. Safe from any thread.

        Derived signals are user code: they run with no WeightsLab lock held (they may call the
        SDK), so a thread that holds the data lock leaves them to the next drain.
        """
        if not self._queue and not self._jobs and not self._in_flight:
            return
        exp = self.experiment
        while True:
            if self._queue:
                # Always data_lock first, then the drain lock: a reader holding data_lock may drain safely.
                with exp.data_lock, self._drain_lock:
                    losses_before = self.loss_updates
                    while self._queue:
                        record = self._queue.popleft()
                        try:
                            if isinstance(record, SeenRecord):
                                exp.table.mark_seen(record.rows, record.step)
                            else:
                                self._apply(record)
                        except Exception:  # one bad record never blocks the others or a reader
                            self.errors += 1
                            log.exception("recording %s failed; the record was dropped",
                                          getattr(record, "name", "a batch"))
                    if self.loss_updates != losses_before and time.monotonic() >= self._next_refresh:
                        self._refresh_derived()
            if exp.data_lock.held_by_current_thread():
                return
            if self._run_jobs() or self._queue:
                continue
            # Wait for derived signals other threads are computing, unless this thread holds a
            # lock they may need or is itself inside one.
            if getattr(self._local, "in_job", False) or exp.lock.held_by_current_thread():
                return
            with self._jobs_cond:
                if not self._in_flight:
                    return
                if not self._jobs_cond.wait_for(lambda: not self._in_flight, 10):
                    return
            if not self._queue and not self._jobs:
                return

    def _refresh_derived(self) -> None:
        """Bring the per-row columns derived from losses (mislabel, suggestions) up to date, batched
        across drains and only for the rows recorded since: the first query after training steps finds
        them ready instead of recomputing them over the whole table (caller holds the data lock)."""
        exp = self.experiment
        # At most every REFRESH_S: each pass is larger (vectorised) and the first query still finds
        # at most REFRESH_S of training left to fold in.
        self._next_refresh = time.monotonic() + REFRESH_S
        try:
            n = exp.table.n
            exp.mislabel.live_columns(n, ())  # only the columns queries have read: the others cost nothing
            suggestions = getattr(exp, "suggestions", None)
            if suggestions is not None:
                suggestions.cached_columns(n, exp.table.numeric.get("label"), exp.label_edits.version, ())
        except Exception:
            self.errors += 1
            log.exception("refreshing the derived columns failed")

    def _run_jobs(self) -> bool:
        ran = False
        while True:
            with self._jobs_cond:
                if not self._jobs:
                    return ran
                job = self._jobs.popleft()
                self._in_flight += 1
            self._local.in_job = True
            try:
                record = self.experiment.run_derived(job)
                if record is not None:
                    self._queue.append(record)
            finally:
                self._local.in_job = False
                with self._jobs_cond:
                    self._in_flight -= 1
                    self._jobs_cond.notify_all()
            ran = True

    def _store(self, method: str, *args: Any) -> None:
        """Persist through the sample store; a store failure never loses the in-memory record."""
        try:
            getattr(self.experiment.store, method)(*args)
        except Exception as exc:
            self.store_errors += 1
            self.experiment.warn_once(f"store:{type(exc).__name__}", "the sample store rejected a write (%s); "
                                      "values stay in memory", exc)

    def _apply(self, r: BatchRecord) -> None:
        exp = self.experiment
        table = exp.table
        rows = r.rows if r.rows is not None else _rows_of(table, r.split, resolve_host(r.ids))
        raw = resolve_host(r.values)
        vals = _per_sample(raw)  # float64: curves and derived signals see these
        # A float32 loss per sample is kept as given where storage is float32 (no exactness check).
        kept = raw if isinstance(raw, np.ndarray) and raw.dtype == np.float32 and raw.ndim == 1 else vals
        preds, targets, logits = (resolve_host(v) for v in (r.preds, r.targets, r.logits))
        if preds is None and logits is not None:
            preds = logits.argmax(axis=1)
        finite = np.isfinite(vals)
        if not finite.all():
            exp.warn_once(f"nan:{r.name}", "signal %r has non-finite values (NaN/inf) for some samples; "
                          "they are kept in the history but do not replace the latest value", r.name)
        table.set_signal(r.name, rows[finite], kept[finite])
        exp.history.append(r.name, rows, r.step, kept, r.branch)
        sample_ids = table.store_ids(rows)  # int64 for decimal ids: the store encodes them vectorised
        self._store("append_history", r.name, r.split, sample_ids, np.full(len(rows), r.step, np.int64), kept,
                    r.branch)
        if targets is not None:
            targets = exp.label_edits.overlay(rows, targets)  # a batch yielded before a correction
            table.set_labels(rows, targets)
        if preds is not None:
            table.set_predictions(rows, preds)
            self._store("append_predictions", r.split, sample_ids, r.step, preds)
        if r.is_loss and exp.is_training_split(r.split):  # one stream: the training loss
            class_targets = targets if targets is not None and targets.ndim == 1 else None
            exp.mislabel.reserve(table.n)
            exp.mislabel.update(rows, kept, logits=logits if class_targets is not None else None,
                                targets=class_targets, step=r.step,
                                preds=preds if class_targets is not None and logits is None else None)
            exp.suggestions.update(rows, logits=logits, targets=class_targets,
                                   preds=preds if logits is None else None)
            self.loss_updates += 1
        if r.log_curve and finite.any():
            value = float(vals[finite].mean())
            exp.history.append_curve(r.name, r.split, r.branch, r.step, value)
            self._store("append_curve", r.name, r.split, r.branch, r.step, value)
        if r.derived:
            for derived in exp.derived:
                if derived.subscribe_to != r.name or r.step % derived.compute_every_n_steps:
                    continue
                if derived.name in r.chain:  # e.g. a signal subscribed to its own name
                    exp.warn_once(f"cycle:{derived.name}", "derived signal %r subscribes (in)directly to "
                                  "itself; it runs once per recorded value", derived.name)
                    continue
                with self._jobs_cond:
                    self._jobs.append(exp.prepare_derived(derived, r, rows, vals))


def _rows_of(table: Any, split: str, ids: Any) -> np.ndarray:
    """Rows of a batch's ids: integer arrays in one vectorised lookup, anything else id by id."""
    if isinstance(ids, np.ndarray) and ids.dtype.kind in "iu" and ids.ndim == 1:
        return np.asarray(table.int_rows(split, ids))
    return np.asarray(table.rows(split, ids_to_list(ids)))


def _per_sample(values: Any) -> np.ndarray:
    vals = np.asarray(values, dtype=np.float64)
    return vals.reshape(vals.shape[0], -1).mean(axis=1) if vals.ndim > 1 else vals
