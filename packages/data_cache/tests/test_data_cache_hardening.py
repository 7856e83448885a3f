"""Issue 12 items 2 and 12: a batch that cannot be written is quarantined; a failed manifest write
never duplicates data; orphan segments are ignored and removed on open. Real HDF5 files throughout."""

from __future__ import annotations

import errno
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from weightslab.store import StoredRows
from weightslab_data_cache.h5store import H5SampleStore, StoreError
from weightslab_data_cache.manifest import Manifest


def _rows(ids: list[str], tags: dict[str, np.ndarray]) -> StoredRows:
    n = len(ids)
    return StoredRows(split=np.full(n, "train", dtype=object), sample_id=np.asarray(ids, dtype=object),
                      label=np.full(n, np.nan), discarded=np.zeros(n, bool), tags=tags)


def test_an_unwritable_batch_is_quarantined_and_later_writes_go_on(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    folder = tmp_path / "store"
    store = H5SampleStore(folder, flush_interval=60)
    try:
        store.append_curve("loss", "train", "b", 1, 0.5)
        store.flush()
        store.update_rows(_rows(["1", "2"], {"bad\x00name": np.array([True, False])}))
        with caplog.at_level(logging.ERROR, logger="weightslab.data_cache"):
            store.flush()  # returns: the batch is kept aside, not re-queued forever
        assert len(store.quarantined) == 1 and store.quarantined[0].parent == folder / "quarantine"
        assert any("kept aside" in r.getMessage() for r in caplog.records)
        kept = json.loads(store.quarantined[0].read_text())
        assert "NUL" in kept["error"] and kept["rows"][0]["sample_ids"] == ["1", "2"]
        assert {c["name"]: c["values"] for c in kept["rows"][0]["columns"]}["bad\x00name"] == [True, False]
        for step in (2, 3):  # everything recorded afterwards is written
            store.append_curve("loss", "train", "b", step, 0.1 * step)
            store.flush()
        assert store.stats["pending_values"] == 0
    finally:
        store.close()
    with H5SampleStore(folder, flush_interval=60) as reopened:
        curve = reopened.load().curves[("loss", "train", "b")]
        assert curve.step.tolist() == [1, 2, 3]


def test_a_failed_manifest_write_does_not_duplicate_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "store"
    real_write = Manifest.write
    failures = {"left": 1}

    def enospc_once(self: Manifest, where: Path) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, where)

    store = H5SampleStore(folder, flush_interval=60)
    try:
        store.append_curve("loss", "train", "b", 1, 1.0)
        store.flush()
        monkeypatch.setattr(Manifest, "write", enospc_once)
        store.append_curve("loss", "train", "b", 2, 2.0)
        with pytest.raises(StoreError, match="No space left") as err:
            store.flush()
        assert str(tmp_path) not in str(err.value) and "sample store 'store' failed" in str(err.value)
        store.flush()  # the retry succeeds
        assert failures["left"] == 0
        listed = {s.file for s in Manifest.read(folder).segments}
        assert {s.file for s in store._manifest.segments} == listed
        assert sorted(p.name for p in folder.glob("seg-*.h5")) == sorted(listed)  # the failed one is gone
        assert store.load().curves[("loss", "train", "b")].step.tolist() == [1, 2]
    finally:
        store.close()
    with H5SampleStore(folder, flush_interval=60) as reopened:
        assert reopened.load().curves[("loss", "train", "b")].step.tolist() == [1, 2]


def test_orphan_segment_files_are_ignored_and_removed_on_open(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    with H5SampleStore(folder, flush_interval=60) as store:
        store.append_curve("loss", "train", "b", 1, 1.0)
        store.flush()
        listed = store.segment_files()
    orphan = folder / "seg-99999999.h5"
    shutil.copy(listed[0], orphan)  # a real segment holding the same data, not in the manifest
    with H5SampleStore(folder, flush_interval=60) as reopened:
        assert not orphan.exists()
        assert reopened.load().curves[("loss", "train", "b")].step.tolist() == [1]


def test_manifest_entries_outside_the_folder_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    with H5SampleStore(folder, flush_interval=60) as store:
        store.append_curve("loss", "train", "b", 1, 1.0)
        store.flush()
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    outside = tmp_path / "seg-00000000.h5"
    shutil.copy(folder / manifest["segments"][0]["file"], outside)
    manifest["segments"][0]["file"] = "../seg-00000000.h5"
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"'\.\./seg-00000000\.h5' is not a segment file name"):
        H5SampleStore(folder, flush_interval=60)
    assert outside.exists()


def test_a_persistent_io_error_is_retried_then_quarantined_but_disk_full_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from weightslab_data_cache import h5store
    from weightslab_data_cache.segment_io import SegmentWriter

    real_write = SegmentWriter.write
    mode = {"errno": errno.EIO, "calls": 0}

    def failing(self: SegmentWriter, *args: object, **kwargs: object) -> None:
        if mode["errno"]:
            mode["calls"] += 1
            raise OSError(mode["errno"], "simulated")
        real_write(self, *args, **kwargs)

    monkeypatch.setattr(SegmentWriter, "write", failing)
    store = H5SampleStore(tmp_path / "store", flush_interval=0)
    try:
        store.append_curve("loss", "train", "b", 1, 1.0)
        for _ in range(4 * h5store.MAX_WRITE_ATTEMPTS):
            try:
                store.flush()
                break
            except StoreError:
                continue
        else:
            raise AssertionError("an I/O error that never passes blocked the store")
        assert mode["calls"] == h5store.MAX_WRITE_ATTEMPTS and len(store.quarantined) == 1
        mode.update(errno=errno.ENOSPC, calls=0)
        store.append_curve("loss", "train", "b", 2, 2.0)
        while mode["calls"] <= h5store.MAX_WRITE_ATTEMPTS:  # disk full: kept and retried, never set aside
            with pytest.raises(StoreError, match="simulated"):
                store.flush()
        assert len(store.quarantined) == 1
        mode["errno"] = 0
        store.flush()
        assert store.load().curves[("loss", "train", "b")].step.tolist() == [2]
    finally:
        mode["errno"] = 0
        store.close()
