"""Two real processes (gloo over 127.0.0.1) whose ranks watch datasets of different sizes must
fail clearly (an error naming both sizes), not hang in a collective nor mix up samples.

Unchecked they deadlocked: rank 1 ran out of batches first and waited in the epoch-end gather
while rank 0 waited in a step-boundary broadcast (until gloo's 30-minute timeout)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover - CPU wheels ship gloo
    pytest.skip("torch.distributed is not available in this torch build", allow_module_level=True)

JOB = Path(__file__).with_name("dist_mismatch_job.py")
HANG_S = min(30.0, float(os.environ.get("WL_TEST_TIMEOUT", "120")) / 2)  # a hang, not slowness: both ranks idle


def test_ranks_watching_datasets_of_different_sizes_fail_clearly(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("WEIGHTSLAB_", "WL_", "GRPC_", "CLI_"))}
    environ.update(WEIGHTSLAB_ROOT_LOG_DIR=str(tmp_path / "root"), WL_ENABLE_HP_SYNC="0", OMP_NUM_THREADS="1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    procs = [subprocess.Popen([sys.executable, str(JOB), str(rank), str(port), str(HANG_S)], env=environ,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=HANG_S + 30)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    text = "\n".join(outputs)
    assert "Fatal Python error: Timeout" not in text and "Timeout (0:" not in text, "the ranks hung:\n" + text[-3000:]
    assert all(p.returncode != 0 for p in procs), text[-3000:]
    assert "the ranks watch different datasets (rank 0: 96 samples" in text and "rank 1: 64 samples" in text, text[-3000:]
