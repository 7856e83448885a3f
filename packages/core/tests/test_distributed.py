"""WeightsLab under torch.distributed: two real processes (gloo over 127.0.0.1) run dist_job.py.

Compared with a single process on the same data and seed (global batch = both ranks' batches):
the per-sample table and curves gathered on rank 0 are the same; control decided on rank 0
reaches both ranks at the same step; only rank 0 opens services. A killed rank needs the HDF5
store: tests/test_distributed_failure.py (the assembled system).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
if not torch.distributed.is_available():  # pragma: no cover - CPU wheels ship gloo
    pytest.skip("torch.distributed is not available in this torch build", allow_module_level=True)

from dist_job import launch  # noqa: E402 - after the skips (it imports torch.distributed)
from dist_job import load as _load  # noqa: E402

TIMEOUT = float(os.environ.get("WL_TEST_TIMEOUT", "120"))


def _run(out: Path, *, world: int, scenario: str = "plain") -> list[subprocess.CompletedProcess[str]]:
    return launch(out, world=world, scenario=scenario, timeout=TIMEOUT)


def test_records_gathered_on_rank_0_equal_a_single_process_run(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    single = tmp_path / "single"
    with ThreadPoolExecutor(2) as pool:  # the baseline and the job at once: the test's time stays short
        baseline = pool.submit(_run, single, world=1)
        done = _run(tmp_path / "job", world=2, scenario="serve")
    (alone_done,) = baseline.result()
    assert alone_done.returncode == 0, alone_done.stdout + alone_done.stderr
    assert [d.returncode for d in done] == [0, 0], "\n".join(d.stdout[-3000:] for d in done)
    job = tmp_path / "job"
    alone, both = _load(single, "result.json"), _load(job, "result.json")
    assert sorted(alone["rows"]) == sorted(both["rows"]) and len(alone["rows"]) == 192
    for column in ("train_loss", "suspected_mislabel", "seen_count"):
        a = np.array([alone["rows"][k][column] for k in sorted(alone["rows"])])
        b = np.array([both["rows"][k][column] for k in sorted(alone["rows"])])
        assert not np.isnan(b).any(), column
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=column)
    curve_a, curve_b = np.array(alone["curve"]), np.array(both["curve"])
    assert curve_b.shape == curve_a.shape == (24, 2)  # one point per step: the global batch's mean
    np.testing.assert_allclose(curve_b, curve_a, rtol=1e-5, atol=1e-6)
    # the two ranks' batches of a step are the single process's batch of that step
    rank0, rank1, one = (_load(job, "rank0.json"), _load(job, "rank1.json"), _load(single, "rank0.json"))
    for a, b, s in zip(rank0["steps"], rank1["steps"], one["steps"], strict=True):
        assert sorted(a["ids"] + b["ids"]) == sorted(s["ids"]) and not set(a["ids"]) & set(b["ids"])
    # only rank 0 serves: rank 1's wl.serve() started nothing and opened no listening socket
    assert rank1["services"] == [] and rank1["new_listening"] == []
    logs = done[1].stdout
    assert "[rank 1/2]" in logs and "this rank opens no port" in logs


def test_control_from_rank_0_reaches_both_ranks_at_the_same_step(tmp_path: Path) -> None:
    done = _run(tmp_path, world=2, scenario="control")
    assert [d.returncode for d in done] == [0, 0], "\n".join(d.stdout[-3000:] for d in done)
    result = _load(tmp_path, "result.json")
    control = result["control"]
    ranks = [_load(tmp_path, f"rank{r}.json") for r in (0, 1)]
    assert ranks[0]["final_step"] == ranks[1]["final_step"] == len(ranks[0]["steps"]) == len(ranks[1]["steps"])
    paused = control["paused_step"]
    for rank in ranks:
        steps = rank["steps"]
        # the lr edit made while paused applies on both ranks from the same step
        assert [s["lr"] for s in steps] == [0.1] * paused + [0.01] * (len(steps) - paused)
        # no rank started a step while rank 0 was paused
        assert not [s for s in steps if control["paused_at"] <= s["t"] <= control["resumed_at"]]
        # the discards made mid-epoch leave both ranks' batches from the next epoch on
        assert not [s for s in steps if s["step"] >= 12 and {0, 1} & set(s["ids"])]
    # the relabel made on rank 0 while paused reaches the loader of the rank that yields each sample
    relabelled = set(range(2, 12))
    for rank in ranks:
        before = [(i, t) for s in rank["steps"] if s["step"] < paused
                  for i, t in zip(s["ids"], s["targets"], strict=True) if i in relabelled and i != 7]
        after = [t for s in rank["steps"] if s["step"] >= paused
                 for i, t in zip(s["ids"], s["targets"], strict=True) if i in relabelled]
        assert 7 not in {t for _, t in before}
        assert after and set(after) == {7}  # each rank yields some of them in epoch 2, corrected
    assert [r["comment"] for r in ranks] == ["c" * 3000] * 2  # a long decision reaches every rank whole
    assert control["run_n_stopped_at"] == paused + 3  # run 3 steps: exactly 3 more on rank 0 ...
    assert result["discarded"] == ["0", "1"]
    # ... and rank 1 ran in lockstep: the same number of steps in each epoch, never more
    first_epoch = [len([s for s in r["steps"] if s["step"] < 12]) for r in ranks]
    assert first_epoch == [12, 12]


def test_evaluation_and_a_checkpoint_restore_are_coordinated(tmp_path: Path) -> None:
    done = _run(tmp_path, world=2, scenario="restore")
    assert [d.returncode for d in done] == [0, 0], "\n".join(d.stdout[-3000:] for d in done)
    log = _load(tmp_path, "result.json")["control"]
    ranks = [_load(tmp_path, f"rank{r}.json") for r in (0, 1)]
    assert log["eval"] == "done"
    saved, restored_at = log["saved_step"], log["restored_at"]
    assert restored_at == saved
    for rank in ranks:
        # no rank took a step while rank 0 evaluated (the others waited at the boundary)
        assert not [s for s in rank["steps"] if log["eval_started"] <= s["t"] <= log["eval_ended"]]
        # both ranks went back to the checkpoint's step with its weights (rank 0 wrote it once)
        again = [s for s in rank["steps"] if s["step"] == saved]
        assert len(again) == 2, [s["step"] for s in rank["steps"]]
        assert again[1]["params"] == pytest.approx(log["saved_params"], rel=1e-9)
        assert again[0]["params"] == pytest.approx(log["saved_params"], rel=1e-9)
    # after the restore the ranks stay in lockstep with equal weights (DDP keeps equal weights equal)
    assert ranks[0]["final_step"] == ranks[1]["final_step"]
    assert ranks[0]["final_params"] == pytest.approx(ranks[1]["final_params"], rel=1e-9)
    assert [s["params"] for s in ranks[0]["steps"]] == pytest.approx([s["params"] for s in ranks[1]["steps"]])
