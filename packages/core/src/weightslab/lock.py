"""The main experiment lock: a re-entrant lock that says who holds it and since when.

The watchdog reads :meth:`WeightsLabRLock.holder` to find a stuck holder; gRPC handlers
use :func:`try_acquire_rlock` so a stuck holder yields ``RESOURCE_EXHAUSTED`` instead of a hang.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class LockHolder:
    thread_id: int
    thread_name: str
    since: float  # time.monotonic() of the outermost acquisition
    depth: int

    @property
    def held_seconds(self) -> float:
        return time.monotonic() - self.since


class WeightsLabRLock:
    """Re-entrant lock exposing holder thread, outermost acquisition time and depth."""

    def __init__(self, name: str = "weightslab_rlock") -> None:
        self.name = name
        self._lock = threading.RLock()
        self._owner: int | None = None
        self._owner_name = ""
        self._since = 0.0
        self._depth = 0
        self.exempt_threads: set[int] = set()  # e.g. a user-triggered evaluation pass

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        if got:
            if self._depth == 0:
                current = threading.current_thread()
                self._owner = current.ident
                self._owner_name = current.name
                self._since = time.monotonic()
            self._depth += 1
        return got

    def release(self) -> None:
        if self._owner != threading.get_ident():
            raise RuntimeError(f"{self.name} released by a thread that does not hold it")
        try:  # an asynchronous interrupt landing here must not leave the lock held
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._owner_name = ""
        finally:
            self._lock.release()

    def __enter__(self) -> WeightsLabRLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def holder(self) -> LockHolder | None:
        """A consistent snapshot of the current holder, or ``None`` when free."""
        owner, name, since, depth = self._owner, self._owner_name, self._since, self._depth
        if owner is None or depth == 0:
            return None
        return LockHolder(owner, name, since, depth)

    def held_by_current_thread(self) -> bool:
        return self._owner == threading.get_ident()

    def release_all(self) -> int:
        """Fully release a lock held (possibly re-entrantly) by this thread; returns the depth
        to give back to :meth:`reacquire` (0 when this thread did not hold it)."""
        if not self.held_by_current_thread():
            return 0
        depth = self._depth
        for _ in range(depth):
            self.release()
        return depth

    def reacquire(self, depth: int) -> None:
        for _ in range(depth):
            self.acquire()


class LockInterrupt(BaseException):
    """Delivered by the watchdog to a thread that held the main lock too long.

    A ``BaseException`` so ordinary ``except Exception`` blocks do not stop it; the training
    guard catches it at the step boundary so the run goes on with the next step.
    """


class LockTimeout(TimeoutError):
    """The main lock could not be acquired in time (mapped to RESOURCE_EXHAUSTED)."""


@contextmanager
def try_acquire_rlock(lock: WeightsLabRLock, timeout: float) -> Iterator[WeightsLabRLock]:
    """Hold ``lock`` for the block, or raise :class:`LockTimeout` after ``timeout`` seconds."""
    if not lock.acquire(timeout=timeout):
        holder = lock.holder()
        who = f" (held by {holder.thread_name} for {holder.held_seconds:.1f}s)" if holder else ""
        raise LockTimeout(f"{lock.name} not acquired within {timeout:g}s{who}")
    try:
        yield lock
    finally:
        lock.release()
