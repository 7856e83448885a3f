"""Read committed segments back into the experiment's ``StoredState``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from weightslab.store import StoredCurve, StoredHistory, StoredState

from weightslab_data_cache import columns, rows
from weightslab_data_cache.manifest import Manifest
from weightslab_data_cache.segment import PredSignature
from weightslab_data_cache.segment_io import SegmentReader


def read_dictionaries(readers: list[SegmentReader]) -> tuple[list[str], list[str]]:
    """Concatenate the names and sample-id dictionaries, checking they are contiguous."""
    out: dict[str, list[str]] = {"names": [], "ids": []}
    for reader in readers:
        for key, entries in out.items():
            base, new = reader.dictionary(key)
            if not new:
                continue
            if base != len(entries):
                raise ValueError(f"{reader.path}: dictionary {key} starts at {base}, expected {len(entries)}")
            entries.extend(new)
    return out["names"], out["ids"]


def _steps(total: int, chunk: int) -> range:
    return range(0, total, chunk if chunk > 0 else max(total, 1))


def _history(readers: list[SegmentReader], names: np.ndarray, ids: np.ndarray,
             chunk_size: int) -> dict[str, StoredHistory]:
    parts: dict[int, list[Any]] = {}
    for reader in readers:
        for code, group in reader.history_groups().items():
            parts.setdefault(code, []).append(group)
    out: dict[str, StoredHistory] = {}
    for code, groups in parts.items():
        total = sum(int(g["sid"].shape[0]) for g in groups)
        hist = StoredHistory(split=np.empty(total, dtype=object), sample_id=np.empty(total, dtype=object),
                             step=np.empty(total, dtype=np.int64), value=np.empty(total, dtype=np.float64),
                             branch=np.empty(total, dtype=object))
        pos = 0
        for g in groups:
            n = int(g["sid"].shape[0])
            if n == 0:
                continue
            g["step"].read_direct(hist.step, dest_sel=np.s_[pos:pos + n])
            g["value"].read_direct(hist.value, dest_sel=np.s_[pos:pos + n])
            sid = g["sid"]
            for a in _steps(n, chunk_size):
                b = min(n, a + (chunk_size or n))
                np.take(ids, sid[a:b], out=hist.sample_id[pos + a:pos + b])
            runs = g["runs"][()]
            ends = np.append(runs[1:, 0], n)
            for (start, split, branch), end in zip(runs.tolist(), ends.tolist(), strict=True):
                hist.split[pos + start:pos + end] = names[split]
                hist.branch[pos + start:pos + end] = names[branch]
            pos += n
        out[str(names[code])] = hist
    return out


def _curves(readers: list[SegmentReader], names: np.ndarray) -> dict[tuple[str, str, str], StoredCurve]:
    blocks = [b for b in (r.curves() for r in readers) if b is not None]
    if not blocks:
        return {}
    key = np.concatenate([b.key for b in blocks])
    step = np.concatenate([b.step for b in blocks])
    value = np.concatenate([b.value for b in blocks])
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(uniq.shape[0] + 1))
    out = {}
    for i, (sig, split, branch) in enumerate(uniq.tolist()):
        idx = order[bounds[i]:bounds[i + 1]]
        out[(str(names[sig]), str(names[split]), str(names[branch]))] = StoredCurve(step[idx], value[idx])
    return out


def _decode_predictions(sig: PredSignature, value: np.ndarray) -> np.ndarray:
    if sig.enc == "raw":
        return value
    texts = [v.decode("utf-8") if isinstance(v, bytes) else v for v in value.tolist()]
    if sig.enc == "str":
        return np.array(texts, dtype=str)
    return columns.object_array([json.loads(t) for t in texts])


def _predictions(readers: list[SegmentReader], names: np.ndarray, ids: np.ndarray) -> dict[str, Any]:
    groups: dict[PredSignature, list[Any]] = {}
    for reader in readers:
        for sig, g in reader.prediction_groups():
            groups.setdefault(sig, []).append(reader.prediction_block(sig, g))
    by_split: dict[int, list[tuple[PredSignature, np.ndarray, np.ndarray, np.ndarray]]] = {}
    for sig, blocks in groups.items():
        value = _decode_predictions(sig, np.concatenate([b.value for b in blocks]))
        by_split.setdefault(sig.split, []).append(
            (sig, np.concatenate([b.sid for b in blocks]), np.concatenate([b.step for b in blocks]), value))
    out: dict[str, Any] = {}
    for split, parts in by_split.items():
        if len(parts) == 1:
            value = parts[0][3]
        else:  # several dtypes/shapes in one split: one object per row, grouped by storage
            value = columns.object_array([row for p in parts for row in p[3]])
        out[str(names[split])] = {
            "sample_id": ids[np.concatenate([p[1] for p in parts])],
            "step": np.concatenate([p[2] for p in parts]),
            "value": value,
        }
    return out


def load_state(readers: list[SegmentReader], names_list: list[str], ids_list: list[str],
               chunk_size: int = 0) -> StoredState:
    names = columns.object_array(names_list)
    ids = columns.object_array(ids_list)
    state = StoredState(history=_history(readers, names, ids, chunk_size), curves=_curves(readers, names),
                        predictions=_predictions(readers, names, ids))
    patches = [p for p in (r.rows() for r in readers) if p is not None]
    if patches:
        state.rows = rows.to_stored(rows.fold(rows.concat(patches)), names, ids)
    return state


def read_store(folder: str | Path, *, retries: int = 3) -> StoredState:
    """Read a store folder without taking the writer lock (safe while a writer runs)."""
    folder = Path(folder)
    for attempt in range(retries):
        manifest = Manifest.read(folder)
        readers: list[SegmentReader] = []
        try:
            for info in manifest.segments:
                readers.append(SegmentReader(folder / info.file))
            names, ids = read_dictionaries(readers)
            return load_state(readers, names, ids)
        except FileNotFoundError:  # a compaction replaced files between manifest read and open
            if attempt == retries - 1:
                raise
            time.sleep(0.05)
        finally:
            for r in readers:
                r.close()
    raise AssertionError("unreachable")
