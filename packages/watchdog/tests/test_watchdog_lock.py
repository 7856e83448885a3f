"""Lock monitor: a stuck holder is interrupted once per episode; short holds and exempt
threads are left alone."""

from __future__ import annotations

import threading

from watchdog_testutil import wait_until, watchdog_settings
from weightslab.lock import WeightsLabRLock
from weightslab.log import WATCHDOG
from weightslab_watchdog import _WatchdogInterrupt
from weightslab_watchdog.lock_monitor import LockMonitor
from weightslab_watchdog.service import WatchdogService

STUCK = 0.05


def _held_longer_than(lock: WeightsLabRLock, seconds: float) -> bool:
    holder = lock.holder()
    return holder is not None and holder.held_seconds > seconds


class SpinningHolder:
    """A training-like thread that takes the lock and spins in pure Python."""

    def __init__(self, lock: WeightsLabRLock, *, swallow: bool = False, name: str = "train-loop") -> None:
        self.lock = lock
        self.swallow = swallow
        self.acquired = threading.Event()
        self.stop = threading.Event()
        self.caught = 0
        self.caught_event = threading.Event()
        self.finally_ran = threading.Event()
        self.escaped: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _spin(self) -> None:
        spins = 0
        while not self.stop.is_set():
            spins += 1

    def _run(self) -> None:
        try:
            try:
                with self.lock:
                    self.acquired.set()
                    if self.swallow:
                        while not self.stop.is_set():
                            try:
                                self._spin()
                            except _WatchdogInterrupt:
                                self.caught += 1
                                self.caught_event.set()
                    else:
                        self._spin()
            except _WatchdogInterrupt:
                self.caught += 1
                self.caught_event.set()
            finally:
                self.finally_ran.set()
        except BaseException as exc:  # anything else escaping is a test failure
            self.escaped = exc

    def start(self) -> SpinningHolder:
        self.thread.start()
        assert self.acquired.wait(10)
        return self

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def test_stuck_holder_in_python_loop_is_interrupted_and_lock_released(logs) -> None:
    settings = watchdog_settings(GRPC_WATCHDOG_STUCK_SECONDS=STUCK)
    lock = WeightsLabRLock()
    monitor = LockMonitor(lock, settings.stuck_seconds)
    holder = SpinningHolder(lock).start()
    try:
        wait_until(lambda: _held_longer_than(lock, STUCK), what="a stuck hold")
        check = monitor.poll_once()
        assert check.state == "stuck" and check.interrupted
        assert check.holder is not None and check.holder.thread_name == "train-loop"
        assert holder.finally_ran.wait(10), "the holder's finally did not run"
        holder.thread.join(10)
        assert not holder.thread.is_alive()
        assert holder.caught == 1 and holder.escaped is None
        assert lock.holder() is None
        assert lock.acquire(timeout=1)  # really free
        lock.release()
        assert monitor.poll_once().state == "free"
    finally:
        holder.finish()
    [message] = logs.messages(WATCHDOG, "delivering _WatchdogInterrupt")
    assert "train-loop" in message and "held for" in message
    assert "_spin" in message  # the holder's current Python stack


def test_short_holds_are_never_interrupted(logs) -> None:
    settings = watchdog_settings(GRPC_WATCHDOG_STUCK_SECONDS=5)
    lock = WeightsLabRLock()
    monitor = LockMonitor(lock, settings.stuck_seconds)
    holder = SpinningHolder(lock).start()
    try:
        for _ in range(5):
            check = monitor.poll_once()
            assert check.state == "held" and not check.interrupted
    finally:
        holder.finish()
    assert holder.caught == 0 and holder.escaped is None
    assert monitor.interrupts_delivered == 0
    assert not logs.messages(WATCHDOG)


def test_many_short_holds_under_the_running_thread_are_never_interrupted() -> None:
    config_env = {"GRPC_WATCHDOG_STUCK_SECONDS": 2, "GRPC_WATCHDOG_INTERVAL_SECONDS": 0.005}
    import types

    lock = WeightsLabRLock()
    experiment = types.SimpleNamespace(lock=lock, services={}, store=None)
    service = WatchdogService(experiment, watchdog_settings(**config_env)).start()
    interrupted = []
    try:
        try:
            while service.polls < 20:
                with lock:
                    sum(range(200))  # a short piece of work under the lock
        except _WatchdogInterrupt as exc:  # pragma: no cover - the failure being tested
            interrupted.append(exc)
    finally:
        service.stop()
    assert not interrupted
    assert service.lock_monitor is not None and service.lock_monitor.interrupts_delivered == 0


def test_exempt_thread_is_not_interrupted(logs) -> None:
    lock = WeightsLabRLock()
    monitor = LockMonitor(lock, watchdog_settings(GRPC_WATCHDOG_STUCK_SECONDS=STUCK).stuck_seconds)
    holder = SpinningHolder(lock, name="eval-pass")
    holder.thread.start()
    assert holder.acquired.wait(10)
    assert holder.thread.ident is not None
    lock.exempt_threads.add(holder.thread.ident)  # exempted from another thread
    try:
        wait_until(lambda: _held_longer_than(lock, STUCK), what="a long hold")
        for _ in range(4):
            check = monitor.poll_once()
            assert check.state == "exempt" and not check.interrupted
    finally:
        holder.finish()
        lock.exempt_threads.discard(holder.thread.ident)
    assert holder.caught == 0 and holder.escaped is None
    assert monitor.interrupts_delivered == 0
    assert len(logs.messages(contains="exempt thread 'eval-pass'")) == 1  # logged once per episode


def test_interrupt_is_delivered_once_per_stuck_episode(logs) -> None:
    lock = WeightsLabRLock()
    monitor = LockMonitor(lock, watchdog_settings(GRPC_WATCHDOG_STUCK_SECONDS=STUCK).stuck_seconds)
    for episode in (1, 2):  # a second episode (new acquisition) gets its own interrupt
        holder = SpinningHolder(lock, swallow=True, name=f"swallower-{episode}").start()
        try:
            wait_until(lambda: _held_longer_than(lock, STUCK), what="a stuck hold")
            first = monitor.poll_once()
            assert first.state == "stuck" and first.interrupted
            assert holder.caught_event.wait(10)
            for _ in range(5):  # same episode: still stuck, never interrupted again
                later = monitor.poll_once()
                assert later.state == "stuck" and not later.interrupted
        finally:
            holder.finish()
        assert holder.caught == 1 and holder.escaped is None
        assert lock.holder() is None
    assert monitor.interrupts_delivered == 2
    assert len(logs.messages(WATCHDOG, "delivering _WatchdogInterrupt")) == 2
    assert len(logs.messages(WATCHDOG, "still held")) == 2  # one follow-up per episode


def test_thread_blocked_in_a_c_call_gets_the_interrupt_when_the_call_returns(logs) -> None:
    lock = WeightsLabRLock()
    monitor = LockMonitor(lock, watchdog_settings(GRPC_WATCHDOG_STUCK_SECONDS=STUCK).stuck_seconds)
    gate = threading.Lock()
    gate.acquire()
    acquired = threading.Event()
    outcome: list[str] = []

    def blocked() -> None:
        try:
            with lock:
                acquired.set()
                gate.acquire(timeout=10)  # blocks in C
                outcome.append("not interrupted")
        except _WatchdogInterrupt:
            outcome.append("interrupted")

    thread = threading.Thread(target=blocked, name="c-call", daemon=True)
    thread.start()
    try:
        assert acquired.wait(10)
        wait_until(lambda: _held_longer_than(lock, STUCK), what="a stuck hold")
        assert monitor.poll_once().interrupted
        still = monitor.poll_once()  # pending: the C call has not returned yet
        assert still.state == "stuck" and not still.interrupted and thread.is_alive()
        assert logs.messages(WATCHDOG, "probably blocked in a C call")
    finally:
        gate.release()
    thread.join(10)
    assert outcome == ["interrupted"]
    assert lock.holder() is None
