"""Query frames of an experiment, cached per table version (one cache per experiment).

Paging through one query (the Studio grid, the slider) must not copy or re-sort a 1M-row
table per page: the frame is reused while the table version is unchanged, and the filtered
and (partially) sorted row order of recent queries is kept with it.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np

ORDER_CACHE_ENTRIES = 16
T = TypeVar("T")
_PREFETCH_ROWS = 4000  # sort a prefix a few pages long, so the next pages come from the cache


class FrameCache:
    def __init__(self) -> None:
        self._frame: tuple[Any, int, Any] | None = None
        # key -> (frame, generation, total, order, complete). A table frame is a set of views, so
        # the same Frame object serves several table versions: entries also need the generation.
        self._orders: OrderedDict[str, tuple[Any, int, int, np.ndarray, bool]] = OrderedDict()
        self._generation = 0
        self._derived: dict[str, tuple[Any, int, Any]] = {}  # name -> (frame, generation, value)
        self._lock = threading.Lock()

    def frame(self, experiment: Any) -> Any:
        table = experiment.table
        experiment.mark_read()  # also when the cached frame answers: background work gives way to queries
        experiment.recorder.drain()
        version = table.version  # read before the copy: a later edit invalidates it
        cached = self._frame
        if cached is not None and cached[0] is table and cached[1] == version:
            return cached[2]
        frame = experiment.frame()
        with self._lock:
            self._generation += 1  # every cached order predates this version
            self._derived.clear()
            self._frame = (table, version, frame)
        return frame

    def ordered(self, frame: Any, query: Any, end: int) -> tuple[int, np.ndarray]:
        """``(total, at least the first ``end`` rows in query order)`` of filter + top-k + sort."""
        from weightslab.query import filter_mask, sort_indices, top_k
        from weightslab.query.ordering import page_of

        key = json.dumps([query.filter.model_dump(mode="json") if query.filter is not None else None,
                          [k.model_dump(mode="json") for k in query.sort],
                          query.top_k.model_dump(mode="json") if query.top_k is not None else None],
                         sort_keys=True)
        with self._lock:
            generation = self._generation
            hit = self._orders.get(key)
            if hit is not None and hit[0] is frame and hit[1] == generation and (hit[4] or len(hit[3]) >= end):
                self._orders.move_to_end(key)
                return hit[2], hit[3]
        want = max(end * 2, end + _PREFETCH_ROWS)
        if query.top_k is not None:
            t = query.top_k
            idx = top_k(frame, t.column, t.k, largest=t.largest, filter=query.filter)
            total = len(idx)
            order = sort_indices(frame, idx, query.sort, limit=min(want, total)) if query.sort else idx
        else:  # counted, then read a block of rows at a time: no index of every matching row
            mask = None if query.filter is None else filter_mask(frame, query.filter)
            total = len(frame) if mask is None else int(np.count_nonzero(mask))
            order = page_of(frame, mask, query.sort, want)
        with self._lock:
            for stale in [k for k, v in self._orders.items() if v[0] is not frame or v[1] != self._generation]:
                del self._orders[stale]  # never keep old snapshots alive
            if generation == self._generation:  # not computed on a version that has changed since
                self._orders[key] = (frame, generation, total, order, len(order) >= total)
            while len(self._orders) > ORDER_CACHE_ENTRIES:
                self._orders.popitem(last=False)
        return total, order


    def derived(self, frame: Any, name: str, compute: Callable[[Any], T]) -> T:
        """``compute(frame)``, kept until the table changes (a count every reply carries)."""
        with self._lock:
            generation = self._generation
            hit = self._derived.get(name)
            if hit is not None and hit[0] is frame and hit[1] == generation:
                return cast(T, hit[2])
        value = compute(frame)
        with self._lock:
            if generation == self._generation:
                self._derived[name] = (frame, generation, value)
        return value


_caches: weakref.WeakKeyDictionary[Any, FrameCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def frame_cache(experiment: Any) -> FrameCache:
    with _caches_lock:
        cache = _caches.get(experiment)
        if cache is None:
            cache = _caches[experiment] = FrameCache()
        return cache


def snapshot(experiment: Any) -> Any:
    """The experiment's query frame (whole table plus derived columns), cached per version."""
    return frame_cache(experiment).frame(experiment)
