"""A rank killed mid-run (kill -9) under torch.distributed, with the real HDF5 store.

Two real processes (gloo over 127.0.0.1) run packages/core/tests/dist_job.py. Rank 1 killed:
rank 0 raises ``RankDied`` with a clear log line and stores what it had. Rank 0 killed: rank 1
stops with the same error instead of hanging, and the store rank 0 left opens in a new process
with what it had committed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
if not torch.distributed.is_available():  # pragma: no cover - CPU wheels ship gloo
    pytest.skip("torch.distributed is not available in this torch build", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages" / "core" / "tests"))
from dist_job import N_SAMPLES, PER_RANK_BATCH, launch, load, stored_losses  # noqa: E402

TIMEOUT = float(os.environ.get("WL_TEST_TIMEOUT", "120"))


def test_a_killed_rank_is_reported_on_rank_0_and_the_store_opens(tmp_path: Path) -> None:
    done = launch(tmp_path, world=2, scenario="kill1", timeout=TIMEOUT)
    assert done[1].returncode == -9 and done[0].returncode == 3, done[0].stdout[-3000:]
    result = load(tmp_path, "result.json")
    assert result["failure"].startswith("RankDied: a rank stopped answering")
    assert "ERROR weightslab.distributed: [rank 0/2] a rank stopped answering" in done[0].stdout
    # rank 0's own records of the 7 steps before the failure (not gathered yet: every 10 steps) are
    # stored, and the store opens in a new process
    check = stored_losses(tmp_path / "root", TIMEOUT)
    assert check.returncode == 0, check.stderr[-3000:]
    samples, losses = map(int, check.stdout.split()[-2:])
    assert samples == N_SAMPLES and losses >= 7 * PER_RANK_BATCH


def test_a_killed_rank_0_stops_the_others_and_leaves_a_store_that_opens(tmp_path: Path) -> None:
    done = launch(tmp_path, world=2, scenario="kill0", timeout=TIMEOUT, env={"WL_DISTRIBUTED_SYNC_EVERY": "2"})
    assert done[0].returncode == -9, done[0].stdout[-3000:]
    assert done[1].returncode == 3, done[1].stdout[-3000:]  # an error, not a hang
    assert load(tmp_path, "rank1.json")["failure"].startswith("RankDied: a rank stopped answering")
    assert "[rank 1/2] a rank stopped answering" in done[1].stdout
    check = stored_losses(tmp_path / "root", TIMEOUT)
    assert check.returncode == 0, check.stderr[-3000:]
    samples, losses = map(int, check.stdout.split()[-2:])
    # committed before the kill (gathered every 2 steps, flushed at step 7): whole global batches
    assert samples == N_SAMPLES and losses >= 4 * 2 * PER_RANK_BATCH and losses % (2 * PER_RANK_BATCH) == 0
