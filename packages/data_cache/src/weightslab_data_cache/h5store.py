"""``H5SampleStore``: the crash-safe HDF5 implementation of ``weightslab.store.SampleStore``.

The training thread only enqueues (``append_*``, ``update_rows``: validation plus one numpy
copy). A daemon flusher thread turns the queue into one new segment file every
``flush_interval`` seconds (or on ``flush()``), fsyncs it, then commits it by atomically
replacing the folder's manifest. A second daemon thread merges old segments (see
``compact``). ``kill -9`` at any moment leaves the previous manifest and every file it
lists untouched, so the store reopens with everything up to the last completed flush.
"""

from __future__ import annotations

import atexit
import errno
import logging
import threading
import time
import weakref
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import numpy as np
from weightslab.heap import WORTH_RELEASING, release_free_heap
from weightslab.store import SampleStore, StoredRows, StoredState

from weightslab_data_cache import compact, loader, quarantine
from weightslab_data_cache.codec import Codec
from weightslab_data_cache.manifest import Manifest, acquire_lock, release_lock, remove_orphans
from weightslab_data_cache.pending import Pending, build_segment
from weightslab_data_cache.segment_io import SegmentReader, SegmentWriter

log = logging.getLogger("weightslab.data_cache")

# Stores open in this process, by resolved folder (the folder lock is per process and folder).
_open_stores: weakref.WeakValueDictionary[Path, H5SampleStore] = weakref.WeakValueDictionary()
_open_lock = threading.Lock()


def open_store_at(path: str | Path) -> H5SampleStore | None:
    """The store this process has open on ``path``, if any."""
    with _open_lock:
        return _open_stores.get(Path(path).resolve())


class StoreError(RuntimeError):
    """Writing the store failed (the queued data is kept and retried)."""


# An OSError other than "disk full" (e.g. an HDF5 error about the data itself) is retried this many
# times in a row, then the batch is quarantined: retrying forever would block every later write.
MAX_WRITE_ATTEMPTS = 5
_DISK_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def _retryable(exc: BaseException, attempts: int) -> bool:
    """File-system failures may pass (disk full: always retried, nothing else could be written either);
    anything else fails again with the same data."""
    if not isinstance(exc, OSError):
        return False
    return exc.errno in _DISK_FULL or attempts < MAX_WRITE_ATTEMPTS


ROWS_PER_WRITE = 1 << 18  # row updates per segment write (a segment's rows are merged in memory)
_RELEASE_AFTER_VALUES = WORTH_RELEASING  # a write this large gives its freed heap pages back


class H5SampleStore:
    """Sample table, per-sample history, curves and predictions in a folder of HDF5 segments.

    ``path`` is the store folder (created if missing). ``chunk_size`` is the number of rows
    per HDF5 write/read piece (``WL_BATCH_CHUNK_SIZE``, 0 = whole batch). With
    ``save_predictions=False`` predictions are not persisted. ``max_pending_values``
    bounds the queue: beyond it an early flush starts, beyond twice it the caller waits.
    """

    persistent = True

    def __init__(self, path: str | Path, *, chunk_size: int = 0, save_predictions: bool = True,
                 flush_interval: float = 1.0, compact_fanout: int = 8,
                 max_pending_values: int = 8_000_000) -> None:
        if chunk_size < 0:
            raise ValueError("chunk_size must be >= 0")
        if compact_fanout < 2:
            raise ValueError("compact_fanout must be >= 2")
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.chunk_size = chunk_size
        self.save_predictions = save_predictions
        self.flush_interval = max(0.0, float(flush_interval))
        self.compact_fanout = compact_fanout
        self.max_pending_values = max(1, max_pending_values)

        self._lock_handle: IO[bytes] | None = acquire_lock(self.path)
        try:
            self._manifest = Manifest.read(self.path)
            remove_orphans(self.path, self._manifest)
            names, ids = self._read_dictionaries()
        except BaseException:
            release_lock(self._lock_handle)
            raise
        self._names = Codec(names)
        self._ids = Codec(ids)
        with _open_lock:
            _open_stores[self.path.resolve()] = self

        self._files_lock = threading.RLock()  # manifest changes, file deletion, loads
        self._cond = threading.Condition(threading.Lock())  # queue and sequence numbers
        self._pending = Pending()
        self._first_pending: float | None = None
        self._enqueued = 0
        self._committed = 0
        self._requested = 0
        self._error: BaseException | None = None
        self._closing = False
        self._closed = False
        self.quarantined: list[Path] = []
        self._failures = 0  # consecutive failed writes (flusher thread only)  # files of batches that could not be written (see quarantine)
        self._compact_wakeup = threading.Event()
        self._compact_mutex = threading.Lock()  # one merge at a time (thread or compact())

        self._flusher = threading.Thread(target=self._flush_loop, name="weightslab-h5-flusher", daemon=True)
        self._compactor = threading.Thread(target=self._compact_loop, name="weightslab-h5-compactor", daemon=True)
        self._flusher.start()
        self._compactor.start()
        self._compact_wakeup.set()
        ref = weakref.ref(self)
        self._atexit = lambda: _close_at_exit(ref)
        atexit.register(self._atexit)

    # -- SampleStore protocol: caller side (enqueue only) ----------------------------------
    def update_rows(self, rows: StoredRows) -> None:
        self._enqueue(lambda p: p.add_rows(rows))

    def append_history(self, signal: str, split: str, sample_ids: np.ndarray, steps: np.ndarray,
                       values: np.ndarray, branch: str) -> None:
        self._enqueue(lambda p: p.add_history(signal, split, sample_ids, steps, values, branch))

    def append_curve(self, signal: str, split: str, branch: str, step: int, value: float) -> None:
        self._enqueue(lambda p: p.add_curve(signal, split, branch, step, value))

    def append_predictions(self, split: str, sample_ids: np.ndarray, step: int,
                           predictions: np.ndarray) -> None:
        if self.save_predictions:
            self._enqueue(lambda p: p.add_predictions(split, sample_ids, step, predictions))

    def _enqueue(self, add: Any) -> None:
        staged = Pending()
        add(staged)  # validation and copies outside the lock
        with self._cond:
            if self._closed or self._closing:
                raise StoreError(f"sample store '{self._shown(self.path)}' is closed")
            self._pending.extend(staged)
            self._enqueued += 1
            if self._first_pending is None:  # wake the flusher: its interval starts now
                self._first_pending = time.monotonic()
                self._cond.notify_all()
            if self._pending.values >= self.max_pending_values:
                self._requested = max(self._requested, self._enqueued)
                self._cond.notify_all()
                while self._pending.values >= 2 * self.max_pending_values and not self._closing:
                    self._cond.wait()

    # -- durability ------------------------------------------------------------------------
    def flush(self) -> None:
        """Block until everything enqueued before this call is committed to disk."""
        with self._cond:
            target = self._enqueued
            if self._committed >= target:
                return
            self._requested = max(self._requested, target)
            self._error = None
            self._cond.notify_all()
            while self._committed < target:
                if self._error is not None:
                    raise StoreError(f"writing sample store '{self._shown(self.path)}' failed: "
                                     f"{self._shown(self._error)}") from self._error
                if not self._flusher.is_alive():
                    raise StoreError(f"sample store '{self._shown(self.path)}': flusher thread is not running")
                self._cond.wait()

    def close(self) -> None:
        """Flush, stop the background threads and release the folder lock (idempotent)."""
        with self._cond:
            if self._closed:
                return
        try:
            self.flush()
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._compact_wakeup.set()
            self._flusher.join()
            self._compactor.join()
            with self._cond:
                self._closed = True
            with _open_lock:
                if _open_stores.get(self.path.resolve()) is self:
                    del _open_stores[self.path.resolve()]
            release_lock(self._lock_handle)
            self._lock_handle = None
            atexit.unregister(self._atexit)

    def __enter__(self) -> H5SampleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------
    def load(self) -> StoredState:
        """Everything stored so far (flushes the queue first)."""
        if not self._closed:
            self.flush()
        with self._files_lock:
            readers = self._open_readers()
            try:
                return loader.load_state(readers, list(self._names.strings[: self._committed_names()]),
                                         list(self._ids.strings[: self._committed_ids()]), self.chunk_size)
            finally:
                for r in readers:
                    r.close()

    def segment_files(self) -> list[Path]:
        with self._files_lock:
            return [self.path / s.file for s in self._manifest.segments]

    @property
    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"enqueued": self._enqueued, "committed": self._committed,
                    "pending_values": self._pending.values, "segments": len(self._manifest.segments)}

    # -- internals -------------------------------------------------------------------------
    def _committed_names(self) -> int:
        return self._names.pending()[0]

    def _committed_ids(self) -> int:
        return self._ids.pending()[0]

    def _open_readers(self) -> list[SegmentReader]:
        readers: list[SegmentReader] = []
        try:
            for info in self._manifest.segments:
                readers.append(SegmentReader(self.path / info.file))
        except BaseException:
            for r in readers:
                r.close()
            raise
        return readers

    def _read_dictionaries(self) -> tuple[list[str], list[str]]:
        readers = self._open_readers()
        try:
            return loader.read_dictionaries(readers)
        finally:
            for r in readers:
                r.close()

    def _take(self) -> tuple[Pending, int] | None:
        """Wait until a batch is due; None when closing with nothing left."""
        with self._cond:
            while True:
                if self._pending:
                    due = (self._requested > self._committed or self._closing
                           or self._first_pending is None
                           or time.monotonic() - self._first_pending >= self.flush_interval)
                    if due:
                        batch, self._pending = self._pending, Pending()
                        self._first_pending = None
                        self._cond.notify_all()  # wake callers blocked on back-pressure
                        return batch, self._enqueued
                    assert self._first_pending is not None
                    self._cond.wait(max(0.0, self._first_pending + self.flush_interval - time.monotonic()))
                elif self._closing:
                    return None
                else:
                    if self._committed < self._enqueued:  # ops that produced nothing to write
                        self._committed = self._enqueued
                        self._cond.notify_all()
                    self._cond.wait()

    def _flush_loop(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            batch, target = taken
            queued = batch.values
            try:
                self._write(batch)
            except Exception as exc:
                self._failures += 1
                if not _retryable(exc, self._failures):
                    self._failures = 0
                    self._quarantine(batch, exc)
                    with self._cond:
                        self._committed = max(self._committed, target)
                        self._cond.notify_all()
                    continue
                # keep the data, report to flush(), retry later
                log.exception("data cache: writing %s failed; will retry", self.path)
                with self._cond:
                    batch.extend(self._pending)
                    self._pending = batch
                    self._first_pending = time.monotonic()
                    self._error = exc
                    self._cond.notify_all()
                    if not self._closing:
                        self._cond.wait(max(self.flush_interval, 0.5))
                    else:
                        return
                continue
            self._failures = 0
            with self._cond:
                self._committed = max(self._committed, target)
                self._cond.notify_all()
            if queued >= _RELEASE_AFTER_VALUES:  # the segment's temporaries: megabytes of heap
                release_free_heap()
            self._compact_wakeup.set()

    def _shown(self, text: object) -> str:
        """``text`` for an error that may reach a client: the store folder by name, never its absolute path."""
        return str(text).replace(str(self.path.absolute()), self.path.name).replace(str(self.path), self.path.name)

    def _quarantine(self, batch: Pending, exc: BaseException) -> None:
        try:
            path = quarantine.write(self.path, batch, exc)
        except Exception:
            log.exception("data cache %s: a batch of %d values cannot be written (%s) nor kept aside; "
                          "it is dropped so that later writes go on", self.path, batch.values, exc)
            return
        self.quarantined.append(path)
        log.error("data cache %s: a batch of %d values cannot be written (%s: %s); kept aside in %s, "
                  "later writes go on", self.path, batch.values, type(exc).__name__, exc, path)

    def _write(self, batch: Pending) -> None:
        """Write ``batch``; many row updates (a million new rows) go in several segments, one after
        the other, so that no write merges more than ROWS_PER_WRITE rows in memory. On a failure
        ``batch`` holds what is not written yet."""
        while (head := batch.take_rows(ROWS_PER_WRITE)) is not None:
            try:
                self._write_segment(head)
            except BaseException:
                batch.put_back(head)
                raise
        self._write_segment(batch)

    def _write_segment(self, batch: Pending) -> None:
        try:
            seg = build_segment(batch, self._names, self._ids)
        except BaseException:
            self._names.rollback()
            self._ids.rollback()
            raise
        if seg.is_empty():
            return
        with self._files_lock:
            info = self._manifest.new_segment(level=0)
        segment_path = self.path / info.file
        writer = SegmentWriter(segment_path, chunk_size=self.chunk_size, seq=info.seq)
        try:
            writer.write(seg, self._names.strings)
            writer.close()
        except BaseException:
            writer.abandon()
            self._names.rollback()
            self._ids.rollback()
            raise
        with self._files_lock:
            # The segment enters the in-memory manifest only once a manifest listing it is on
            # disk: after a failed manifest write (disk full) the retry must not list it twice.
            committed = replace(self._manifest, segments=[*self._manifest.segments, info])
            try:
                committed.write(self.path)
            except BaseException:
                segment_path.unlink(missing_ok=True)  # an orphan; also removed on the next open
                self._names.rollback()
                self._ids.rollback()
                raise
            self._manifest.segments = committed.segments
            self._names.mark_committed(seg.names_base + len(seg.names))
            self._ids.mark_committed(seg.ids_base + len(seg.ids))

    def _compact_loop(self) -> None:
        while True:
            self._compact_wakeup.wait()
            self._compact_wakeup.clear()
            if self._closing:
                return
            try:
                merged = 0
                while not self._closing and self._compact_step():
                    merged += 1
                if merged:
                    release_free_heap()
            except compact.Aborted:
                return
            except Exception:
                log.exception("data cache: compacting %s failed (the store stays valid)", self.path)

    def compact(self) -> int:
        """Merge segments now (what the background compactor does); returns the merges done."""
        merges = 0
        while not self._closing and self._compact_step():
            merges += 1
        return merges

    def _compact_step(self) -> bool:
        with self._compact_mutex:
            return self._compact_once()

    def _compact_once(self) -> bool:
        with self._files_lock:
            run = compact.pick_run(self._manifest.segments, self.compact_fanout)
            if run is None:
                return False
            inputs = self._manifest.segments[run[0]:run[1]]
            level = inputs[0].level + 1
            out = self._manifest.new_segment(level)
        compact.merge([self.path / s.file for s in inputs], self.path / out.file, level=level, seq=out.seq,
                      chunk_size=self.chunk_size, should_stop=lambda: self._closing)
        with self._files_lock:
            segs = self._manifest.segments
            start = segs.index(inputs[0])
            assert segs[start:start + len(inputs)] == inputs
            merged = replace(self._manifest, segments=[*segs[:start], out, *segs[start + len(inputs):]])
            try:
                merged.write(self.path)
            except BaseException:
                (self.path / out.file).unlink(missing_ok=True)  # the inputs stay listed and valid
                raise
            self._manifest.segments = merged.segments
            for s in inputs:
                (self.path / s.file).unlink(missing_ok=True)
        return True


def _close_at_exit(ref: weakref.ref[H5SampleStore]) -> None:
    store = ref()
    if store is not None:
        try:
            store.close()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            log.exception("data cache: closing the store at exit failed")


def _implements_protocol(store: H5SampleStore) -> SampleStore:
    return store  # mypy checks that H5SampleStore satisfies weightslab.store.SampleStore
