"""LRU cache of rendered previews, with render-once semantics and a background warm-up.

* LRU bounded by entry count and by total bytes (an entry larger than ``max_bytes`` is
  returned but not kept).
* Keys are canonical text: ``7``, ``np.int64(7)`` and ``"7"`` are the same key (tuples
  are canonicalised element-wise, e.g. ``(sample_id, size)``).
* Concurrent requests for the same missing key render it once: the first caller renders,
  the others wait on that key's in-flight event and share the result (or its error).
* ``start_warmup(ids, render)`` renders the first ``max_entries`` ids in a daemon thread.
  While it runs, a request for an id it has yet to produce waits up to
  ``warmup_wait_ms`` for it before rendering on demand; ``0`` disables the wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from weightslab_data_cache.codec import id_text

log = logging.getLogger("weightslab.data_cache")
_BUSY_POLL_S = 0.25  # how often a held warm-up checks whether training still runs

Preview = tuple[bytes, str]


def cache_key(key: Any) -> Hashable:
    if isinstance(key, tuple):
        return tuple(id_text(k) for k in key)
    return id_text(key)


def _nbytes(value: Any) -> int:
    if isinstance(value, tuple) and value and isinstance(value[0], bytes | bytearray | memoryview):
        return len(value[0])
    if isinstance(value, bytes | bytearray):
        return len(value)
    return 1


@dataclass
class _Flight:
    event: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    renders: int = 0
    warmup_renders: int = 0
    evictions: int = 0
    warmup_waits: int = 0


class PreviewCache:
    def __init__(self, max_entries: int = 2000, max_bytes: int = 512 << 20, warmup_wait_ms: int = 100) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.warmup_wait_ms = min(max(int(warmup_wait_ms), 0), 1000)  # the config resolver clamps too
        self.stats = CacheStats()
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # an entry arrived or the warm-up ended
        self._inflight: dict[Hashable, _Flight] = {}
        self._warm_pending: set[Hashable] = set()
        self._warm_thread: threading.Thread | None = None
        self._warm_stop = threading.Event()
        self.on_warmup_wait: Callable[[Hashable], None] | None = None  # observability/test hook

    # -- plain cache -----------------------------------------------------------------------
    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: Any) -> bool:
        with self._lock:
            return cache_key(key) in self._entries

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def peek(self, key: Any) -> Any | None:
        """The cached value without rendering or touching the LRU order."""
        with self._lock:
            return self._entries.get(cache_key(key))

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._store(cache_key(key), value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _store(self, k: Hashable, value: Any) -> bool:
        """Insert under the lock; False when the value alone exceeds ``max_bytes``."""
        size = _nbytes(value)
        old = self._entries.pop(k, None)
        if old is not None:
            self._bytes -= _nbytes(old)
        if size > self.max_bytes:
            return False
        self._entries[k] = value
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= _nbytes(evicted)
            self.stats.evictions += 1
        self._changed.notify_all()
        return True

    # -- get with render-once --------------------------------------------------------------
    def get(self, key: Any, render: Callable[[], Any]) -> Any:
        """The cached preview of ``key``, rendering it (once, across threads) when missing."""
        k = cache_key(key)
        deadline: float | None = None
        with self._lock:
            while True:
                value = self._entries.get(k)
                if value is not None:
                    self._entries.move_to_end(k)
                    self.stats.hits += 1
                    return value
                flight = self._inflight.get(k)
                if flight is not None:
                    break
                if k in self._warm_pending and self.warmup_wait_ms > 0:
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self.warmup_wait_ms / 1000.0
                        self.stats.warmup_waits += 1
                        if self.on_warmup_wait is not None:
                            self.on_warmup_wait(k)
                    if now < deadline:
                        self._changed.wait(deadline - now)
                        continue
                flight = _Flight()
                self._inflight[k] = flight
                self.stats.misses += 1
                return self._render(k, flight, render)
        # Another caller is rendering this key: share its result.
        flight.event.wait()
        if flight.error is not None:
            raise flight.error
        return flight.result

    def _render(self, k: Hashable, flight: _Flight, render: Callable[[], Any]) -> Any:
        """Called with the lock held; renders without it."""
        self._lock.release()
        try:
            try:
                flight.result = render()
            except BaseException as exc:
                flight.error = exc
                raise
        finally:
            self._lock.acquire()
            self.stats.renders += 1
            if flight.error is None:
                self._store(k, flight.result)
            self._inflight.pop(k, None)
            flight.event.set()
        return flight.result

    # -- warm-up ---------------------------------------------------------------------------
    @property
    def warming_up(self) -> bool:
        thread = self._warm_thread
        return thread is not None and thread.is_alive()

    def start_warmup(self, sample_ids: Iterable[Any], render: Callable[[Any], Any],
                     chunk_size: int = 0, busy: Callable[[], bool] | None = None) -> threading.Thread:
        """Render the first ``max_entries`` of ``sample_ids`` in a daemon thread.

        ``busy()`` true (e.g. the training loop is stepping) holds the warm-up before its next
        render: rendering is pure Python, and a thread that holds the GIL makes the training
        thread wait a switch interval each time it gets back from a torch op."""
        self.stop_warmup()
        ids: list[Any] = []
        for sample_id in sample_ids:
            if len(ids) >= self.max_entries:
                break
            ids.append(sample_id)
        with self._lock:
            self._warm_stop = threading.Event()
            self._warm_pending = {cache_key(i) for i in ids} - set(self._entries)
        stop = self._warm_stop
        thread = threading.Thread(target=self._warmup, args=(ids, render, chunk_size, stop, busy),
                                  name="weightslab-preview-warmup", daemon=True)
        self._warm_thread = thread
        thread.start()
        return thread

    def wait_warmup(self, timeout: float | None = None) -> bool:
        thread = self._warm_thread
        if thread is not None:
            thread.join(timeout)
        return not self.warming_up

    def stop_warmup(self, timeout: float | None = 5.0) -> None:
        self._warm_stop.set()
        thread = self._warm_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _warmup(self, ids: list[Any], render: Callable[[Any], Any], chunk_size: int,
                stop: threading.Event, busy: Callable[[], bool] | None = None) -> None:
        step = chunk_size if chunk_size > 0 else max(1, len(ids))
        try:
            for a in range(0, len(ids), step):
                with self._lock:  # skip what is cached or being rendered on demand
                    todo = [(i, cache_key(i)) for i in ids[a:a + step]]
                    todo = [(i, k) for i, k in todo if k not in self._entries and k not in self._inflight]
                for sample_id, k in todo:
                    while busy is not None and not stop.is_set() and busy():
                        stop.wait(_BUSY_POLL_S)
                    if stop.is_set():
                        return
                    try:
                        value = render(sample_id)
                    except Exception:
                        log.warning("preview warm-up: rendering sample %r failed", sample_id, exc_info=True)
                        value = None
                    with self._lock:
                        self._warm_pending.discard(k)
                        self.stats.warmup_renders += 1
                        if value is not None and k not in self._entries:
                            if len(self._entries) >= self.max_entries or \
                                    self._bytes + _nbytes(value) > self.max_bytes:
                                return  # full: going on would evict what the warm-up just built
                            self._store(k, value)
                        self._changed.notify_all()
        finally:
            with self._lock:
                self._warm_pending.clear()
                self._changed.notify_all()
