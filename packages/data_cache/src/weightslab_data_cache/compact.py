"""Merge a run of consecutive segments into one (size-tiered, like an LSM tree).

Each flush adds one small level-0 segment. When ``fanout`` consecutive segments share a
level they are merged into one segment of the next level, so every value is rewritten
at most ``log_fanout(total / flush size)`` times and a store has at most
``(fanout - 1) * levels`` files. Merging streams dataset by dataset in pieces of
``chunk_size`` rows; row patches are folded (last write wins) into one patch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from weightslab_data_cache import rows
from weightslab_data_cache.manifest import SegmentInfo
from weightslab_data_cache.segment_io import SegmentReader, SegmentWriter

_PIECE = 1 << 20


class Aborted(Exception):
    """The store is closing; the partial output was removed."""


def pick_run(segments: list[SegmentInfo], fanout: int) -> tuple[int, int] | None:
    """(start, stop) of ``fanout`` consecutive same-level segments: the newest such run first
    (small merges finish quickly and keep the file count low), its oldest members first."""
    found = None
    start = 0
    for i in range(1, len(segments) + 1):
        if i == len(segments) or segments[i].level != segments[start].level:
            if i - start >= fanout:
                found = (start, start + fanout)
            start = i
    return found


def merge(inputs: list[Path], output: Path, *, level: int, seq: int, chunk_size: int = 0,
          should_stop: Callable[[], bool] = lambda: False) -> None:
    """Write the content of ``inputs`` (in order) as one segment file at ``output``."""
    readers = [SegmentReader(p) for p in inputs]
    writer = SegmentWriter(output, chunk_size=chunk_size, seq=seq, level=level)
    piece = chunk_size if chunk_size > 0 else _PIECE
    try:
        for reader in readers:
            names_base, names = reader.stored_entries("names")
            ids_base, ids = reader.stored_entries("ids")
            writer.add_dicts(names_base, names, ids_base, ids)
        totals: dict[int, int] = {}
        for reader in readers:
            for code, g in reader.history_groups().items():
                totals[code] = totals.get(code, 0) + int(g["sid"].shape[0])
        for reader in readers:
            for code, g in reader.history_groups().items():
                n = int(g["sid"].shape[0])
                for a in range(0, max(n, 1), piece):
                    if should_stop():
                        raise Aborted
                    writer.add_history(code, str(g.attrs["signal"]), reader.history_block(code, a, min(n, a + piece)),
                                       hint_rows=totals[code])
            curves = reader.curves()
            if curves is not None:
                writer.add_curves(curves)
            for sig, g in reader.prediction_groups():
                n = int(g["sid"].shape[0])
                for a in range(0, max(n, 1), piece):
                    if should_stop():
                        raise Aborted
                    writer.add_predictions(reader.prediction_block(sig, g, a, min(n, a + piece)),
                                           str(g.attrs["split_name"]), hint_rows=n)
        patches = [p for p in (r.rows() for r in readers) if p is not None]
        if patches:
            writer.add_rows(rows.fold(rows.concat(patches)))
        writer.close()
    except BaseException:
        writer.abandon()
        raise
    finally:
        for r in readers:
            r.close()
