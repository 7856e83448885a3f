"""The exception the watchdog raises inside a thread that holds the main lock for too long.

Delivery uses ``PyThreadState_SetAsyncExc``: the exception is raised in the target thread
the next time it executes Python bytecode. A thread blocked inside a C call (``time.sleep``,
a socket read, ``Event.wait``, a CUDA synchronisation, a C extension loop) receives it only
when that call returns to Python.
"""

from __future__ import annotations

import ctypes

from weightslab.lock import LockInterrupt


class _WatchdogInterrupt(LockInterrupt):
    """Raised asynchronously in a thread that held the main experiment lock for too long.

    A ``BaseException`` (not an ``Exception``) so that ``except Exception`` blocks in user
    code do not swallow it: the stack unwinds and the lock is released by its ``with``
    block or ``finally`` clause. Code that wants to survive it (e.g. the training loop's
    step guard) catches it explicitly at a safe boundary.
    """


def deliver_interrupt(thread_id: int, exc_type: type[BaseException] = _WatchdogInterrupt) -> bool:
    """Schedule ``exc_type`` to be raised in the thread with ident ``thread_id``.

    Returns ``True`` when the thread was found (the exception is pending), ``False`` when no
    such thread exists any more.
    """
    modified = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))
    if modified > 1:  # cannot happen with a valid ident; undo to stay safe
        revoke_interrupt(thread_id)
        raise SystemError(f"PyThreadState_SetAsyncExc touched {modified} threads for id {thread_id}")
    return modified == 1


def revoke_interrupt(thread_id: int) -> None:
    """Clear a pending (not yet raised) asynchronous exception of ``thread_id``."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
