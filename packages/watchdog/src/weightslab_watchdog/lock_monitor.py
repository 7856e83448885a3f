"""Lock monitor: interrupt a thread that holds the main experiment lock for too long.

Each :meth:`LockMonitor.poll_once` reads the lock's holder. When a thread that is not in
``lock.exempt_threads`` has held the lock for more than ``stuck_seconds``, the monitor logs
(level ``WATCHDOG``) the thread, how long it has held the lock and its current Python stack,
then raises :class:`_WatchdogInterrupt` inside that thread. Its stack unwinds and the lock
is released by the ``with`` block / ``finally`` clause that acquired it.

The interrupt is delivered once per stuck *episode* (same holder thread, same outermost
acquisition time): if the thread swallows it or is blocked in a C call, later polls only
log once that the lock is still held. A thread blocked inside a C call receives the
interrupt only when the call returns to Python.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Literal, Protocol

from weightslab.lock import LockHolder
from weightslab.log import WATCHDOG, register_levels

from weightslab_watchdog.interrupt import _WatchdogInterrupt, deliver_interrupt

log = logging.getLogger("weightslab.watchdog.lock")

LockState = Literal["free", "held", "exempt", "stuck"]


class MonitoredLock(Protocol):
    name: str
    exempt_threads: set[int]

    def holder(self) -> LockHolder | None: ...


@dataclass(frozen=True)
class LockCheck:
    """Outcome of one lock poll.

    ``state``: ``free``; ``held`` (for less than the threshold); ``exempt`` (held too long
    by an exempt thread, left alone); ``stuck`` (held too long by a non-exempt thread).
    ``interrupted`` is true only on the poll that delivered the interrupt.
    """

    state: LockState
    holder: LockHolder | None = None
    interrupted: bool = False


def _stack_of(thread_id: int) -> str:
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return "  <no Python frame: the thread is gone or has not started Python code>"
    return "".join(traceback.format_stack(frame)).rstrip()


class LockMonitor:
    """Poll a :class:`weightslab.lock.WeightsLabRLock` and interrupt a stuck holder."""

    def __init__(self, lock: MonitoredLock, stuck_seconds: float) -> None:
        register_levels()
        self.lock = lock
        self.stuck_seconds = stuck_seconds
        self.interrupts_delivered = 0
        self._delivered: tuple[int, float] | None = None  # episode that got the interrupt
        self._noted: tuple[int, float] | None = None  # episode already reported after delivery / exempt

    def poll_once(self) -> LockCheck:
        holder = self.lock.holder()
        if holder is None:
            return LockCheck("free")
        if holder.held_seconds <= self.stuck_seconds:
            return LockCheck("held", holder)
        episode = (holder.thread_id, holder.since)
        if holder.thread_id in getattr(self.lock, "exempt_threads", ()):
            if self._noted != episode:
                self._noted = episode
                log.info("%s held for %.1fs by exempt thread %r (e.g. an evaluation pass); not interrupted",
                         self.lock.name, holder.held_seconds, holder.thread_name)
            return LockCheck("exempt", holder)
        if self._delivered == episode:
            if self._noted != episode:
                self._noted = episode
                log.log(WATCHDOG, "%s still held by thread %r %.1fs after the interrupt: the thread is "
                        "probably blocked in a C call and gets the interrupt when that call returns "
                        "(or it caught _WatchdogInterrupt)\n%s", self.lock.name, holder.thread_name,
                        holder.held_seconds, _stack_of(holder.thread_id))
            return LockCheck("stuck", holder)
        if holder.thread_id == threading.get_ident():
            log.error("%s held for %.1fs by the polling thread itself; not interrupting it",
                      self.lock.name, holder.held_seconds)
            return LockCheck("stuck", holder)
        stack = _stack_of(holder.thread_id)
        # Narrow the window between the check and the delivery: same episode still going on?
        current = self.lock.holder()
        if current is None or (current.thread_id, current.since) != episode:
            return LockCheck("free" if current is None else "held", current)
        log.log(WATCHDOG, "%s held for %.1fs (> %gs) by thread %r (id %d, depth %d): delivering "
                "_WatchdogInterrupt to release it. Stack of the holder:\n%s", self.lock.name,
                holder.held_seconds, self.stuck_seconds, holder.thread_name, holder.thread_id,
                holder.depth, stack)
        self._delivered = episode
        delivered = deliver_interrupt(holder.thread_id, _WatchdogInterrupt)
        if not delivered:
            log.error("could not interrupt thread %r (id %d): it no longer exists",
                      holder.thread_name, holder.thread_id)
        else:
            self.interrupts_delivered += 1
        return LockCheck("stuck", holder, interrupted=delivered)
