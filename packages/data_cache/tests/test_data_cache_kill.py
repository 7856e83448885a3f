"""kill -9 at random moments: the store always reopens with a consistent prefix of the ops,
including everything the writer reported as flushed."""

from __future__ import annotations

import importlib.util
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from weightslab_data_cache.h5store import H5SampleStore
from weightslab_data_cache.loader import read_store
from weightslab_data_cache.manifest import Manifest

WRITER = Path(__file__).with_name("kill_writer.py")
_spec = importlib.util.spec_from_file_location("kill_writer", WRITER)
assert _spec is not None and _spec.loader is not None
kw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kw)

KILLS = 24
# Only complete lines count: the writer may die at any byte, so a last unterminated line is ignored.
FLUSHED = re.compile(r"^FLUSHED (\d+)\n", re.MULTILINE)


def _open_plainly(folder: Path) -> None:
    """Every committed segment opens with plain h5py and every dataset reads."""
    for info in Manifest.read(folder).segments:
        with h5py.File(folder / info.file, "r") as f:
            def read(_name: str, obj: object) -> None:
                if isinstance(obj, h5py.Dataset):
                    obj[()]
            f.visititems(read)


def _verify(folder: Path, flushed: int) -> int:
    _open_plainly(folder)
    state = read_store(folder)
    c = kw.counts(state)
    mh = c["history"]
    assert mh >= flushed, f"lost flushed data: {c} < {flushed}"
    assert mh >= c["curve"] >= c["predictions"] >= c["rows"] >= mh - 1, f"not a prefix of the op sequence: {c}"

    hist = state.history["loss"] if mh else None
    if hist is not None:
        assert len(hist.step) == mh * kw.B
        np.testing.assert_array_equal(hist.step, np.repeat(np.arange(mh), kw.B))
        np.testing.assert_array_equal(hist.value, np.concatenate([kw.values(b) for b in range(mh)]))
        np.testing.assert_array_equal(hist.sample_id.astype(str),
                                      np.concatenate([kw.ids(b) for b in range(mh)]).astype(str))
        assert set(hist.split.tolist()) == {"train"} and set(hist.branch.tolist()) == {"main"}
    if c["curve"]:
        curve = state.curves[("loss", "train", "main")]
        np.testing.assert_array_equal(curve.step, np.arange(c["curve"]))
        np.testing.assert_allclose(curve.value, [kw.values(b).mean() for b in range(c["curve"])])
    if c["predictions"]:
        pred = state.predictions["train"]
        assert pred["value"].dtype == np.float32
        np.testing.assert_array_equal(pred["value"], np.concatenate([kw.preds(b) for b in range(c["predictions"])]))
        np.testing.assert_array_equal(pred["step"], np.repeat(np.arange(c["predictions"]), kw.B))
    if c["rows"]:
        last: dict[str, int] = {}
        for b in range(c["rows"]):
            for i in kw.ids(b).tolist():
                last[str(i)] = b
        rows = state.rows
        assert rows is not None
        assert sorted(rows.sample_id.tolist()) == sorted(last)
        expect = np.array([last[s] for s in rows.sample_id.tolist()])
        np.testing.assert_array_equal(rows.label, expect.astype(float))
        np.testing.assert_array_equal(rows.discarded, expect % 5 == 0)
        np.testing.assert_array_equal(rows.tags["even"], expect % 2 == 0)
        assert rows.categories["mod3"].tolist() == [str(b % 3) for b in expect.tolist()]
        np.testing.assert_array_equal(rows.metadata["half"], expect * 0.5)
    return mh


@pytest.mark.timeout(120)
def test_kill9_at_random_points_keeps_a_consistent_prefix(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    rng = random.Random(20240601)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    flushed = 0
    batches = 0
    started = time.monotonic()
    for kill in range(KILLS):
        proc = subprocess.Popen([sys.executable, str(WRITER), str(folder)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        try:
            if kill % 4 == 3:  # anywhere from start-up (open, orphan clean-up, repair) onwards
                time.sleep(rng.uniform(0.0, 0.6))
            else:  # while writing and compacting
                line = proc.stdout.readline() if proc.stdout else ""
                assert line.startswith("READY"), line + (proc.stderr.read() if proc.stderr else "")
                time.sleep(rng.uniform(0.0, 0.25))
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL, f"writer exited on its own ({proc.returncode}):\n{err}"
        reported = [int(m[1]) for m in FLUSHED.finditer(out)]
        flushed = max([flushed, *reported])
        batches = _verify(folder, flushed)
    assert flushed > 0 and batches >= flushed
    # A writer reopens after the last kill, removes leftovers and keeps appending.
    with H5SampleStore(folder) as store:
        assert kw.counts(store.load())["history"] == batches
    listed = {s.file for s in Manifest.read(folder).segments}
    assert {p.name for p in folder.glob("seg-*.h5")} == listed
    assert time.monotonic() - started < 100


def test_a_line_cut_by_the_kill_is_ignored() -> None:
    assert [int(m[1]) for m in FLUSHED.finditer("READY 0\nFLUSHED 4\nFLUSHED 8\nFLUSHED")] == [4, 8]
    assert [int(m[1]) for m in FLUSHED.finditer("FLUSHED 4\nFLUSHED 1")] == [4]  # "12" cut after "1"
