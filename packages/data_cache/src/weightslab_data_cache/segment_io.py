"""One segment file: a self-contained HDF5 file written once, then only read.

Layout (every table is a resizable, chunked 1-D dataset, or N-D for predictions)::

    /                      attrs: format, seq, level
    /dict/names            vlen UTF-8; attr base (code of the first entry)
    /dict/ids              vlen UTF-8; attr base
    /history/<code>/       attrs signal (name), code
        sid int32, step int64, value float64, runs (k, 3) int64 [first row, split, branch]
    /curves/               key (n, 3) int32 [signal, split, branch], step int64, value float64
    /predictions/<k>/      attrs split, split_name, enc (raw|str|json), dtype, shape
        sid int32, step int64, value (n, *shape)
    /rows/                 split int32, sid int32 (codes)
    /rows/columns/<i>/     attrs kind, name, enc; value, set (optional), null (optional)

Rows are written in pieces of ``chunk_size`` (``WL_BATCH_CHUNK_SIZE``; 0 = all at once).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from weightslab.spelled import SpelledSequence

from weightslab_data_cache import columns
from weightslab_data_cache.rows import Column, RowPatch
from weightslab_data_cache.segment import CurveBlock, HistoryBlock, PredBlock, PredSignature, SegmentData

FORMAT = 1
_CHUNK_BYTES = 1 << 20
_DICT_SLICE = 1 << 16  # dictionary entries spelled out and written at a time
_MAX_CODE = np.iinfo(np.int32).max


def _codes32(codes: np.ndarray) -> np.ndarray:
    if codes.size and int(codes.max()) > _MAX_CODE:
        raise OverflowError("more than 2**31 distinct sample ids")
    return codes.astype(np.int32)


def _dict_piece(entries: Sequence[str], start: int, stop: int) -> np.ndarray:
    """Dictionary entries ``start .. stop - 1`` to write: ASCII bytes when the sequence can give them
    without a string object each (a codec's numbered ids), else an object array of the strings."""
    packed = getattr(entries, "packed", None)
    piece = packed(start, min(stop, len(entries))) if packed is not None else None
    return piece if piece is not None else columns.object_array(entries[start:stop])


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SegmentWriter:
    """Creates a segment file; ``append`` grows datasets, so several sources can be merged."""

    def __init__(self, path: Path, *, chunk_size: int = 0, seq: int = 0, level: int = 0) -> None:
        self.path = path
        self.chunk_size = chunk_size
        self.file = h5py.File(path, "w", libver="latest")
        self.file.attrs.update({"format": FORMAT, "seq": seq, "level": level})
        self._pred_groups: dict[PredSignature, str] = {}
        self._names = 0
        self._ids = 0

    # -- low level -------------------------------------------------------------------------
    def append(self, name: str, data: np.ndarray, hint_rows: int = 0, *, text: bool = False) -> int:
        """Append rows to dataset ``name`` (created resizable and chunked); returns its old length.
        Object arrays, and ``S`` (ASCII bytes) arrays with ``text``, make a UTF-8 text dataset."""
        total = data.shape[0]
        step = self.chunk_size if self.chunk_size > 0 else max(total, 1)
        dset = self.file.get(name)
        if dset is None:
            text = data.dtype == object or (text and data.dtype.kind == "S")
            dtype = columns.STR if text else data.dtype
            row_bytes = max(1, int(np.prod(data.shape[1:], dtype=np.int64)) * (8 if text else data.dtype.itemsize))
            rows = max(1, min(max(hint_rows, total, 1), _CHUNK_BYTES // row_bytes))
            # Created with its first piece (much cheaper than create-empty + resize + write).
            dset = self.file.create_dataset(name, data=data[:step], maxshape=(None, *data.shape[1:]),
                                            dtype=dtype, chunks=(rows, *data.shape[1:]))
            start, done = 0, min(step, total)
        else:
            start, done = int(dset.shape[0]), 0
        if done < total:
            dset.resize(start + total, axis=0)
            for a in range(done, total, step):
                b = min(total, a + step)
                dset[start + a:start + b] = data[a:b]
        return start

    # -- tables ----------------------------------------------------------------------------
    def add_dicts(self, names_base: int, names: Sequence[str], ids_base: int, ids: Sequence[str]) -> None:
        for key, base, entries in (("names", names_base, names), ("ids", ids_base, ids)):
            if not entries:
                continue
            path = f"dict/{key}"
            # A slice at a time: a million new ids are never a million strings at once.
            start = self.append(path, _dict_piece(entries, 0, _DICT_SLICE), len(entries), text=True)
            if start == 0:
                self.file[path].attrs["base"] = base
            elif int(self.file[path].attrs["base"]) + start != base:
                raise ValueError(f"dictionary {key} is not contiguous")
            for a in range(_DICT_SLICE, len(entries), _DICT_SLICE):
                self.append(path, _dict_piece(entries, a, a + _DICT_SLICE), text=True)

    def add_history(self, code: int, signal: str, block: HistoryBlock, hint_rows: int = 0) -> None:
        group = f"history/{code}"
        if group not in self.file:
            g = self.file.create_group(group)
            g.attrs.update({"signal": signal, "code": code})
        offset = self.append(f"{group}/sid", _codes32(block.sid), hint_rows)
        self.append(f"{group}/step", block.step.astype(np.int64, copy=False), hint_rows)
        self.append(f"{group}/value", block.value.astype(np.float64, copy=False), hint_rows)
        runs = block.runs.astype(np.int64, copy=True)
        runs[:, 0] += offset
        self.append(f"{group}/runs", runs)

    def add_curves(self, block: CurveBlock) -> None:
        self.append("curves/key", block.key.astype(np.int32))
        self.append("curves/step", block.step.astype(np.int64, copy=False))
        self.append("curves/value", block.value.astype(np.float64, copy=False))

    def add_predictions(self, block: PredBlock, split_name: str, hint_rows: int = 0) -> None:
        sig = block.signature
        group = self._pred_groups.get(sig)
        if group is None:
            group = f"predictions/{len(self._pred_groups)}"
            self._pred_groups[sig] = group
            g = self.file.create_group(group)
            g.attrs.update({"split": sig.split, "split_name": split_name, "enc": sig.enc,
                            "dtype": sig.dtype, "shape": np.asarray(sig.shape, dtype=np.int64)})
        self.append(f"{group}/sid", _codes32(block.sid), hint_rows)
        self.append(f"{group}/step", block.step.astype(np.int64, copy=False), hint_rows)
        self.append(f"{group}/value", block.value, hint_rows)

    def add_rows(self, patch: RowPatch) -> None:
        if "rows" in self.file:
            raise ValueError("a segment holds one row patch")
        self.append("rows/split", _codes32(patch.split))
        self.append("rows/sid", _codes32(patch.sid))
        self.file.require_group("rows/columns")
        for i, ((kind, name), col) in enumerate(patch.columns.items()):
            enc, data, null = columns.encode(col.values)
            g = self.file.create_group(f"rows/columns/{i}")
            g.attrs.update({"kind": kind, "name": name, "enc": enc})
            self.append(f"rows/columns/{i}/value", data)
            if col.set is not None:
                self.append(f"rows/columns/{i}/set", col.set)
            if null is not None:
                self.append(f"rows/columns/{i}/null", null)

    def write(self, seg: SegmentData, names: list[str]) -> None:
        """Write a whole in-memory segment; ``names`` decodes split codes for readable attributes."""
        self.add_dicts(seg.names_base, seg.names, seg.ids_base, seg.ids)
        for code, block in seg.history.items():
            self.add_history(code, names[code], block)
        if seg.curves is not None:
            self.add_curves(seg.curves)
        for pred in seg.predictions:
            self.add_predictions(pred, names[pred.signature.split])
        if seg.rows is not None:
            self.add_rows(seg.rows)

    def close(self) -> None:
        """Flush, close and fsync: the file is complete on disk when this returns."""
        self.file.flush()
        self.file.close()
        fsync_path(self.path)

    def abandon(self) -> None:
        try:
            self.file.close()
        finally:
            self.path.unlink(missing_ok=True)


class SegmentReader:
    """Read access to one committed segment file (plain ``h5py.File(path, "r")``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = h5py.File(path, "r")

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> SegmentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def level(self) -> int:
        return int(self.file.attrs.get("level", 0))

    def stored_entries(self, key: str) -> tuple[int, Sequence[str]]:
        """:meth:`dictionary` read a slice at a time as it is used (a merge copies a million ids
        without holding a million strings, and other threads run between slices)."""
        dset = self.file.get(f"dict/{key}")
        if dset is None:
            return -1, []
        return int(dset.attrs["base"]), _StoredEntries(dset)

    def dictionary(self, key: str) -> tuple[int, list[str]]:
        dset = self.file.get(f"dict/{key}")
        if dset is None:
            return -1, []
        return int(dset.attrs["base"]), list(dset.asstr()[()].tolist())

    def history_groups(self) -> dict[int, Any]:
        group = self.file.get("history")
        return {} if group is None else {int(k): g for k, g in group.items()}

    def history_block(self, code: int, start: int = 0, stop: int | None = None) -> HistoryBlock:
        g = self.file[f"history/{code}"]
        n = g["sid"].shape[0]
        stop = n if stop is None else stop
        runs = g["runs"][()].astype(np.int64)
        # runs overlapping [start, stop), rebased to start
        ends = np.append(runs[1:, 0], n)
        sel = (ends > start) & (runs[:, 0] < stop)
        piece = runs[sel].copy()
        piece[:, 0] = np.maximum(piece[:, 0] - start, 0)
        return HistoryBlock(g["sid"][start:stop].astype(np.int64), g["step"][start:stop],
                            g["value"][start:stop], piece)

    def curves(self) -> CurveBlock | None:
        if "curves" not in self.file:
            return None
        g = self.file["curves"]
        return CurveBlock(g["key"][()].astype(np.int64), g["step"][()], g["value"][()])

    def prediction_groups(self) -> Iterator[tuple[PredSignature, Any]]:
        group = self.file.get("predictions")
        if group is None:
            return
        for key in sorted(group, key=int):
            g = group[key]
            a = g.attrs
            sig = PredSignature(int(a["split"]), str(a["enc"]), str(a["dtype"]),
                                tuple(int(x) for x in np.asarray(a["shape"]).reshape(-1)))
            yield sig, g

    def prediction_block(self, sig: PredSignature, g: Any, start: int = 0, stop: int | None = None) -> PredBlock:
        value = g["value"]
        value = value.asstr()[start:stop] if sig.enc != "raw" else value[start:stop]
        return PredBlock(sig, g["sid"][start:stop].astype(np.int64), g["step"][start:stop], value)

    def rows(self) -> RowPatch | None:
        if "rows" not in self.file:
            return None
        g = self.file["rows"]
        patch = RowPatch(g["split"][()].astype(np.int64), g["sid"][()].astype(np.int64))
        cols = g.get("columns", {})
        for key in sorted(cols, key=int):
            c = cols[key]
            enc = str(c.attrs["enc"])
            data = c["value"].asstr()[()] if enc in ("str", "json") else c["value"][()]
            null = c["null"][()] if "null" in c else None
            values = columns.decode(enc, data, null)
            patch.columns[(str(c.attrs["kind"]), str(c.attrs["name"]))] = Column(
                values, c["set"][()].astype(bool) if "set" in c else None)
        return patch


class _StoredEntries(SpelledSequence):
    """A segment's dictionary dataset read as text, slice by slice (valid while the file is open)."""

    def __init__(self, dset: Any) -> None:
        self.dset = dset

    def __len__(self) -> int:
        return int(self.dset.shape[0])

    def _spell(self, start: int, stop: int) -> list[str]:
        texts: list[str] = self.dset.asstr()[start:stop].tolist()
        return texts
