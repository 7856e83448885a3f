"""Give the C heap's free pages back to the operating system after large one-off work.

Why: glibc raises its mmap threshold to the size of the largest block freed so far (up to
32 MB). A training loop frees such blocks all the time (a ``DataLoader``'s shuffled index of a
million samples is 8 MB), so later numpy arrays below that size -- a data-cache segment being
built, a compaction merge, a registration's temporaries -- are carved from the heap, and their
pages stay resident after they are freed: tens of MB a run, counted against the process.
``malloc_trim`` returns every whole free page of every arena (the address space is kept, so
nothing moves). It costs milliseconds (over 100 ms after a merge freed a lot), so it is called
after work that freed megabytes -- from the store's background threads, and once after a large
registration at set-up -- never per batch.

Only glibc has it; elsewhere :func:`release_free_heap` does nothing and says so.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["WORTH_RELEASING", "release_free_heap"]

# Rows registered, or values written, whose temporaries are megabytes: worth a release after.
# Smaller work reuses the pages the last large one freed.
WORTH_RELEASING = 1 << 16

_trim: Callable[[int], int] | None = None
_looked_up = False


def _lookup() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # lazy: importing weightslab stays cheap

    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
    except OSError:
        return None
    fn = getattr(libc, "malloc_trim", None)  # glibc's; musl and others have none
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def release_free_heap() -> bool:
    """Return the heap's free pages to the OS (glibc ``malloc_trim(0)``).

    Returns False where the C library has no such call (nothing is done). Thread-safe: glibc
    locks each arena while it trims it.

    >>> isinstance(release_free_heap(), bool)
    True
    """
    global _trim, _looked_up
    if not _looked_up:
        _trim = _lookup()
        _looked_up = True
    if _trim is None:
        return False
    _trim(0)
    return True
